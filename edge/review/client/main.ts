/// <reference lib="dom" />
/**
 * The review page's script (bundled by `npm run build:review` into client-bundle.gen.ts, served at
 * /review/assets/client.js). Everything works without it; it adds:
 * - the correction form's check with the trade schema before anything is sent;
 * - new proposals in the list without a reload (polling);
 * - the queue's keyboard shortcuts.
 */
import { type FormValues, parseProposalForm, parseReviewFields } from "../form-model.ts";

const POLL_MS = 3000;

function formValues(form: HTMLFormElement): FormValues {
  const out: FormValues = {};
  for (const [k, v] of new FormData(form)) if (typeof v === "string") out[k] = v;
  return out;
}

function showErrors(form: HTMLFormElement, errors: Record<string, string | undefined>): boolean {
  let first: HTMLElement | undefined;
  for (const box of form.querySelectorAll<HTMLElement>("p.error[id^='e-']")) {
    const name = box.id.slice(2);
    const message = errors[name] ?? "";
    box.textContent = message;
    const input = form.querySelector<HTMLElement>(`[name='${name}']`);
    if (input && name !== "rating") {
      if (message) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    }
    if (message && !first) first = input ?? box;
  }
  const summary = form.querySelector<HTMLElement>("#form-error");
  if (summary) {
    summary.hidden = !first;
    summary.textContent = first ? "Nothing was sent: correct the fields marked in red." : "";
  }
  first?.focus();
  return first === undefined;
}

function checkForm(form: HTMLFormElement): boolean {
  const values = formValues(form);
  const proposal = parseProposalForm(values);
  const review = parseReviewFields(values);
  return showErrors(form, {
    ...(proposal.ok ? {} : proposal.errors),
    ...(review.ok ? {} : review.errors),
  });
}

function setUpForms(): void {
  for (const form of document.querySelectorAll<HTMLFormElement>("form[data-proposal-form]")) {
    form.addEventListener("submit", (event) => {
      if (!checkForm(form)) event.preventDefault();
    });
  }
}

function setUpPolling(): void {
  const body = document.querySelector<HTMLElement>("#rows[data-poll]");
  if (!body) return;
  const live = document.querySelector<HTMLElement>("#live");
  let arrived = 0;
  const poll = async () => {
    try {
      const url = `${body.dataset.poll}&after=${encodeURIComponent(body.dataset.cursor ?? "")}`;
      const res = await fetch(url, { headers: { accept: "application/json" } });
      if (!res.ok) return;
      const data = (await res.json()) as { count: number; cursor: string; html: string };
      if (data.count > 0) {
        body.insertAdjacentHTML("afterbegin", data.html);
        body.dataset.cursor = data.cursor;
        arrived += data.count;
        if (live) live.textContent = `${arrived} new proposal${arrived === 1 ? "" : "s"} arrived.`;
        document.querySelector("#empty")?.remove();
      }
    } finally {
      setTimeout(poll, POLL_MS);
    }
  };
  setTimeout(poll, POLL_MS);
}

/** Whether keys typed now go into a field (a focused radio button or checkbox does not count). */
function typing(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  if (target instanceof HTMLInputElement)
    return !/^(radio|checkbox|button|submit)$/.test(target.type);
  return target.isContentEditable || /^(TEXTAREA|SELECT)$/.test(target.tagName);
}

function setUpQueueKeys(): void {
  if (document.body.dataset.page !== "queue") return;
  const form = document.querySelector<HTMLFormElement>("form[data-proposal-form]");
  document.addEventListener("keydown", (event) => {
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter" && form) {
      event.preventDefault();
      form.requestSubmit();
      return;
    }
    if (event.key === "Escape" && typing(event.target)) {
      (event.target as HTMLElement).blur();
      return;
    }
    if (typing(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
    const go = (id: string) => document.querySelector<HTMLAnchorElement>(id)?.click();
    if (event.key === "n" || event.key === "j") go("#queue-next");
    else if (event.key === "p" || event.key === "k") go("#queue-prev");
    else if (event.key === "e") {
      event.preventDefault();
      form?.querySelector<HTMLElement>("input:not([type=hidden]), select, textarea")?.focus();
    } else if (/^[1-5]$/.test(event.key) && form) {
      const radio = form.querySelector<HTMLInputElement>(
        `input[name=rating][value='${event.key}']`,
      );
      if (radio) {
        radio.checked = true;
        radio.focus();
      }
    }
  });
}

setUpForms();
setUpPolling();
setUpQueueKeys();
