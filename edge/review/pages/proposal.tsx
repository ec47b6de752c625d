/** @jsxImportSource hono/jsx */
/** One proposal: prompt, augmentation, proposal, assessment, numbers, feedback, correction form. */
import type { FeedbackRow } from "../../../db/schema/feedback.ts";
import type { TradeProposal } from "../../../gpu-node/contract/index.ts";
import type { ProposalDetail } from "../../services/get-proposal.ts";
import { type FormValues, PROPOSAL_FIELDS } from "../form-model.ts";
import { fmtTime, Layout } from "./layout.tsx";

export type FormErrors = Record<string, string | undefined>;

export function ProposalFields(p: { proposal: TradeProposal }) {
  return (
    <dl class="kv">
      {PROPOSAL_FIELDS.map((f) => {
        const v = (p.proposal as Record<string, unknown>)[f.name];
        return (
          <>
            <dt>{f.label}</dt>
            <dd data-field={f.name}>{v === undefined || v === null ? "—" : String(v)}</dd>
          </>
        );
      })}
    </dl>
  );
}

function content(item: FeedbackRow): { rating?: number; comment?: string; other?: string } {
  const c = item.feedbackContent;
  if (c && typeof c === "object" && !Array.isArray(c)) {
    const o = c as Record<string, unknown>;
    const rating = typeof o.rating === "number" ? o.rating : undefined;
    const comment = typeof o.comment === "string" ? o.comment : undefined;
    const rest = Object.fromEntries(
      Object.entries(o).filter(([k]) => k !== "rating" && k !== "comment"),
    );
    return {
      rating,
      comment,
      other: Object.keys(rest).length > 0 ? JSON.stringify(rest) : undefined,
    };
  }
  return { other: typeof c === "string" ? c : JSON.stringify(c) };
}

export function FeedbackItem(p: {
  item: FeedbackRow & { usedIn?: number };
  stored?: boolean;
  /** The copy in the "stored" notice carries no ids (the list has them). */
  copy?: boolean;
}) {
  const { item } = p;
  const c = content(item);
  return (
    <article
      class={`feedback-item${p.stored ? " stored" : ""}`}
      id={p.copy ? undefined : `feedback-${item.id}`}
      aria-labelledby={p.copy ? undefined : `fh-${item.id}`}
    >
      <h3 id={p.copy ? undefined : `fh-${item.id}`} style="font-size:1rem;margin:0 0 4px">
        <span class="badge">{item.feedbackType}</span> #{item.id}{" "}
        <span class="muted">{fmtTime(item.receivedAt)} UTC</span>
        {p.stored ? " (just stored)" : ""}
      </h3>
      {c.rating !== undefined ? <p>Rating: {c.rating} / 5</p> : null}
      {c.comment ? <p>Comment: {c.comment}</p> : null}
      {c.other ? <pre>{c.other}</pre> : null}
      {item.correctedProposal ? (
        <>
          <p style="margin:6px 0 0;font-weight:600">Corrected proposal</p>
          <ProposalFields proposal={item.correctedProposal} />
        </>
      ) : null}
      {item.examplePrompt !== null ? (
        <p class="used-in" data-used-in={item.usedIn ?? 0}>
          Used as an example in {item.usedIn ?? 0} later proposal
          {(item.usedIn ?? 0) === 1 ? "" : "s"}.
        </p>
      ) : null}
    </article>
  );
}

function Field(p: { f: (typeof PROPOSAL_FIELDS)[number]; value: string; error?: string }) {
  const { f } = p;
  const id = `f-${f.name}`;
  const describedBy = `h-${f.name} e-${f.name}`;
  const common = {
    id,
    name: f.name,
    "aria-describedby": describedBy,
    "aria-invalid": p.error ? "true" : undefined,
  };
  return (
    <div class="field" data-field={f.name}>
      <label for={id}>
        {f.label}
        {f.required ? "" : " (optional)"}
      </label>
      {f.kind === "select" ? (
        <select {...common}>
          {f.required ? null : <option value="">none</option>}
          {(f.options ?? []).map((o) => (
            <option value={o} selected={p.value === o}>
              {o}
            </option>
          ))}
        </select>
      ) : f.kind === "textarea" ? (
        <textarea {...common} rows={3}>
          {p.value}
        </textarea>
      ) : f.kind === "number" ? (
        <input {...common} type="text" inputmode="decimal" autocomplete="off" value={p.value} />
      ) : (
        <input {...common} type="text" autocomplete="off" value={p.value} />
      )}
      {f.hint ? (
        <p class="hint" id={`h-${f.name}`}>
          {f.hint}
        </p>
      ) : null}
      <p class="error" id={`e-${f.name}`}>
        {p.error ?? ""}
      </p>
    </div>
  );
}

export function CorrectionForm(p: {
  transactionId: string;
  values: FormValues;
  errors: FormErrors;
  csrf: string;
  returnTo: "proposal" | "queue";
  message?: string;
}) {
  const rating = p.values.rating ?? "";
  return (
    <form
      method="post"
      action={`/review/${p.transactionId}/feedback`}
      novalidate
      data-proposal-form
      aria-labelledby="correct-h"
    >
      <h2 id="correct-h">Correct or rate this proposal</h2>
      <p class="muted">
        Change any field to store a correction (it becomes a worked example for later, similar
        prompts). Leave the fields as they are to store only a rating or a comment.
      </p>
      <input type="hidden" name="_csrf" value={p.csrf} />
      <input type="hidden" name="return" value={p.returnTo} />
      <div class="row2">
        {PROPOSAL_FIELDS.filter((f) => f.kind !== "textarea").map((f) => (
          <Field f={f} value={p.values[f.name] ?? ""} error={p.errors[f.name]} />
        ))}
      </div>
      {PROPOSAL_FIELDS.filter((f) => f.kind === "textarea").map((f) => (
        <Field f={f} value={p.values[f.name] ?? ""} error={p.errors[f.name]} />
      ))}
      <fieldset class="rating" aria-describedby="e-rating">
        <legend>Rating (optional)</legend>
        {["", "1", "2", "3", "4", "5"].map((r) => (
          <label>
            <input type="radio" name="rating" value={r} checked={rating === r} />{" "}
            {r === "" ? "none" : r}
          </label>
        ))}
        <p class="error" id="e-rating">
          {p.errors.rating ?? ""}
        </p>
      </fieldset>
      <div class="field">
        <label for="f-comment">Comment (optional)</label>
        <textarea id="f-comment" name="comment" rows={2}>
          {p.values.comment ?? ""}
        </textarea>
      </div>
      <p class="error problem" id="form-error" role="alert" hidden={!p.message}>
        {p.message ?? ""}
      </p>
      <button type="submit">Save feedback</button>{" "}
      <span class="muted">
        <kbd>Ctrl</kbd>+<kbd>Enter</kbd> saves
      </span>
    </form>
  );
}

export function ProposalBody(p: {
  detail: ProposalDetail;
  stored?: string;
  form: { values: FormValues; errors: FormErrors; message?: string };
  csrf: string;
  returnTo: "proposal" | "queue";
}) {
  const { row, feedback, examples } = p.detail;
  const t = row.timings;
  return (
    <>
      <div class="grid">
        <div>
          <section aria-labelledby="prop-h" class="panel">
            <h2 id="prop-h">Proposal</h2>
            <ProposalFields proposal={row.phi3Proposal} />
            <dl class="kv">
              <dt>Recorded</dt>
              <dd>{fmtTime(row.createdAt)} UTC</dd>
              <dt>Endpoint</dt>
              <dd>{row.endpoint}</dd>
              <dt>Transaction id</dt>
              <dd>
                <code>{row.transactionId}</code>
              </dd>
            </dl>
          </section>
          <section aria-labelledby="prompt-h">
            <h2 id="prompt-h">Prompt</h2>
            <pre id="prompt">{row.prompt}</pre>
          </section>
          <section aria-labelledby="hermes-h" class="panel">
            <h2 id="hermes-h">Hermes assessment</h2>
            {row.hermesAssessment !== null ? (
              <pre>{row.hermesAssessment}</pre>
            ) : row.hermesError ? (
              <p class="problem">The critique failed: {row.hermesError}</p>
            ) : (
              <p class="muted">None: this endpoint ({row.endpoint}) does not ask Hermes.</p>
            )}
          </section>
        </div>
        <section class="panel" aria-labelledby="correct-h">
          <CorrectionForm
            transactionId={row.transactionId}
            values={p.form.values}
            errors={p.form.errors}
            message={p.form.message}
            csrf={p.csrf}
            returnTo={p.returnTo}
          />
        </section>
      </div>
      <section aria-labelledby="aug-h">
        <h2 id="aug-h">Augmented prompt (as sent to Phi-3)</h2>
        {examples.length === 0 ? (
          <p class="muted" id="examples-used">
            No worked examples were used: the prompt went to Phi-3 unchanged.
          </p>
        ) : (
          <>
            <p id="examples-used">
              {examples.length} worked example{examples.length === 1 ? "" : "s"} used:
            </p>
            <ol class="examples">
              {examples.map((e) =>
                e.item ? (
                  <li>
                    <a href={`/review/${e.item.transactionId}#feedback-${e.id}`}>
                      Correction #{e.id} ({e.item.correctedProposal?.ticker ?? "?"},{" "}
                      {e.item.correctedProposal?.action ?? "?"})
                    </a>{" "}
                    of proposal{" "}
                    <a href={`/review/${e.item.transactionId}`}>
                      <code>{e.item.transactionId.slice(0, 8)}</code>
                    </a>
                  </li>
                ) : (
                  <li>Correction #{e.id} (no longer stored)</li>
                ),
              )}
            </ol>
          </>
        )}
        <details open={examples.length > 0}>
          <summary>Full augmented prompt</summary>
          <pre id="augmented-prompt">{row.augmentedPrompt}</pre>
        </details>
      </section>
      <div class="grid">
        <section aria-labelledby="numbers-h" class="panel">
          <h2 id="numbers-h">Tokens and timings</h2>
          <dl class="kv" aria-labelledby="numbers-h">
            <dt>Phi-3</dt>
            <dd>
              {row.phi3PromptTokens} prompt + {row.phi3CompletionTokens} completion tokens (
              {row.phi3Model}), max_length {row.maxLength}
            </dd>
            {row.hermesModel ? (
              <>
                <dt>Hermes</dt>
                <dd>
                  {row.hermesPromptTokens ?? "?"} prompt + {row.hermesCompletionTokens ?? "?"}{" "}
                  completion tokens ({row.hermesModel})
                </dd>
              </>
            ) : null}
            {Object.entries(t).map(([k, v]) => (
              <>
                <dt>{k.replace(/_ms$/, "")}</dt>
                <dd>{String(v)} ms</dd>
              </>
            ))}
          </dl>
        </section>
      </div>
      <section aria-labelledby="fb-h">
        <h2 id="fb-h">Feedback so far ({feedback.length})</h2>
        {feedback.length === 0 ? <p class="muted">None yet.</p> : null}
        {feedback.map((item) => (
          <FeedbackItem item={item} stored={p.stored === String(item.id)} />
        ))}
      </section>
    </>
  );
}

export function ProposalPage(p: {
  detail: ProposalDetail;
  stored?: string;
  form: { values: FormValues; errors: FormErrors; message?: string };
  csrf: string;
  showLogout: boolean;
}) {
  const { row } = p.detail;
  const storedItem = p.detail.feedback.find((f) => String(f.id) === p.stored);
  return (
    <Layout
      title={`${row.phi3Proposal.ticker} ${row.phi3Proposal.action}`}
      current="list"
      page="proposal"
      csrf={p.csrf}
      showLogout={p.showLogout}
    >
      <p>
        <a href="/review">← Proposals</a>
      </p>
      <h1>
        {row.phi3Proposal.ticker}: {row.phi3Proposal.action}
        {row.phi3Proposal.side ? ` ${row.phi3Proposal.side}` : ""}{" "}
        <span class="muted">({fmtTime(row.createdAt)} UTC)</span>
      </h1>
      {storedItem ? (
        <div class="notice" role="status" id="stored-notice">
          <p style="margin:0 0 4px">
            Stored {storedItem.feedbackType} #{storedItem.id}:
          </p>
          <FeedbackItem item={storedItem} copy />
        </div>
      ) : null}
      <ProposalBody
        detail={p.detail}
        stored={p.stored}
        form={p.form}
        csrf={p.csrf}
        returnTo="proposal"
      />
    </Layout>
  );
}
