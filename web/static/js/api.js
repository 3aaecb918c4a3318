import { t } from "./i18n.js";
// The one way pages call the service's JSON endpoints: the CSRF token on every request, JSON in
// and out, and the server's `error` text (every JSON error carries one) as the thrown message.

export async function api(url, { csrf, body, method } = {}) {
  const options = { method: method || (body === undefined ? "GET" : "POST"), headers: { Accept: "application/json" } };
  if (csrf) options.headers["X-CSRF-Token"] = csrf;
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(url, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || t("The server answered {status}.", { status: response.status }));
  return data;
}
