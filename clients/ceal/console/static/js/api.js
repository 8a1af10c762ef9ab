// The console's own JSON API (same origin only). Failed calls throw an Error whose message is readable.
let csrf = "";

export function setCsrf(token) { csrf = token || ""; }

async function call(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { accept: "application/json" } };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.headers["x-csrf-token"] = csrf;
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw Object.assign(new Error("The console cannot be reached: is `ceal console` still running?"), { status: 0 });
  }
  let data = null;
  try { data = await response.json(); } catch { data = null; }
  if (!response.ok) {
    const message = (data && data.error) || `The console answered ${response.status} ${response.statusText}.`;
    throw Object.assign(new Error(message), { status: response.status });
  }
  return data;
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body ?? {});
export const query = (params) => new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v != null));
