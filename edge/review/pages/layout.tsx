/** @jsxImportSource hono/jsx */
/** The frame of every review page: header navigation, skip link, the stylesheet and the script. */
import type { Child } from "hono/jsx";

export const fmtTime = (d: Date) => d.toISOString().replace("T", " ").slice(0, 19);

export interface Chrome {
  title: string;
  current?: "list" | "queue";
  /** Shown with a logout button when the pages need a login. */
  csrf?: string;
  showLogout?: boolean;
  /** data-page on <body>: the script's hook. */
  page: string;
  children?: Child;
}

export function Layout(p: Chrome) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${p.title} · LLM sidecar review`}</title>
        <link rel="stylesheet" href="/review/assets/review.css" />
        <script src="/review/assets/client.js" defer />
      </head>
      <body data-page={p.page}>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header class="top">
          <span class="brand">LLM sidecar review</span>
          <nav aria-label="Review">
            <a href="/review" aria-current={p.current === "list" ? "page" : undefined}>
              Proposals
            </a>{" "}
            <a href="/review/queue" aria-current={p.current === "queue" ? "page" : undefined}>
              Queue
            </a>{" "}
            <a href="/docs">API docs</a>
          </nav>
          {p.showLogout && p.csrf ? (
            <form method="post" action="/review/logout">
              <input type="hidden" name="_csrf" value={p.csrf} />
              <button type="submit">Log out</button>
            </form>
          ) : null}
        </header>
        <main id="main" tabindex={-1}>
          {p.children}
        </main>
      </body>
    </html>
  );
}

export function ProblemPage(p: {
  title: string;
  message: string;
  csrf?: string;
  showLogout?: boolean;
}) {
  return (
    <Layout title={p.title} page="problem" csrf={p.csrf} showLogout={p.showLogout}>
      <h1>{p.title}</h1>
      <p class="problem" role="alert">
        {p.message}
      </p>
      <p>
        <a href="/review">Back to the proposals</a>
      </p>
    </Layout>
  );
}

export function LoginPage(p: { next: string; message?: string }) {
  return (
    <Layout title="Log in" page="login">
      <div class="login">
        <h1>Log in to review</h1>
        <p>
          Enter one of the service's API keys. It is checked once; the browser then keeps a signed
          session cookie.
        </p>
        {p.message ? (
          <p class="problem" role="alert" id="login-error">
            {p.message}
          </p>
        ) : null}
        <form method="post" action="/review/login">
          <input type="hidden" name="next" value={p.next} />
          <div class="field">
            <label for="key">API key</label>
            <input
              id="key"
              name="key"
              type="password"
              autocomplete="current-password"
              required
              autofocus
              aria-describedby={p.message ? "login-error" : undefined}
              aria-invalid={p.message ? "true" : undefined}
            />
          </div>
          <button type="submit">Log in</button>
        </form>
      </div>
    </Layout>
  );
}
