/* riskgate pages' one way to call the API: `window.riskgateApi` = { ApiError, api, key }.
 *
 * `api(path, {params, body, accept})` sends the key kept in sessionStorage (shared by every page of the
 * service), GETs (or POSTs `body` as JSON), and answers the parsed JSON (or the text for text/csv); an answer
 * that is not 2xx, or no answer at all, throws an ApiError with the status and the service's error body.
 * `key.get()`, `key.set(value)`, `key.forget()` read and change the kept key. Plain JS, no build step.
 */
(function () {
  "use strict";

  const KEY_STORAGE = "riskgate.apiKey";

  class ApiError extends Error {
    constructor(path, status, body) {
      const detail = body && body.message ? body.message : (typeof body === "string" ? body : "");
      super(`${path}: ${status ? "HTTP " + status : "no answer"}${detail ? " — " + detail : ""}`);
      this.status = status;
      this.body = body;
    }
  }

  const key = {
    get: () => sessionStorage.getItem(KEY_STORAGE) || "",
    set: (value) => sessionStorage.setItem(KEY_STORAGE, value),
    forget: () => sessionStorage.removeItem(KEY_STORAGE),
  };

  async function api(path, options) {
    const { params, body, accept } = options || {};
    const query = params ? "?" + new URLSearchParams(params).toString() : "";
    const init = {
      method: body === undefined ? "GET" : "POST",
      headers: { "X-API-Key": key.get(), Accept: accept || "application/json" },
      cache: "no-store",
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path + query, init);
    } catch (error) {
      throw new ApiError(path, 0, "the service did not answer (" + error.message + ")");
    }
    if (!response.ok) {
      let answer = null;
      try { answer = await response.json(); } catch (ignored) { answer = await response.text().catch(() => ""); }
      throw new ApiError(path, response.status, answer);
    }
    return accept === "text/csv" ? response.text() : response.json();
  }

  window.riskgateApi = { ApiError, api, key };
})();
