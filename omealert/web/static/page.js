// omealert status page: refresh the live part in place every interval, and narrow the
// streams as one types. The page works without this script (a plain GET form, no refresh).
"use strict";
(function () {
  const every = Math.max(1, Number(document.body.dataset.refresh) || 10) * 1000;
  const conn = document.getElementById("conn");
  const box = document.getElementById("q");
  let busy = false;
  let again = false;

  async function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const answer = await fetch(location.pathname + location.search, {
        headers: { Accept: "text/html" }, cache: "no-store", credentials: "same-origin",
      });
      if (!answer.ok) { throw new Error("HTTP " + answer.status); }
      const doc = new DOMParser().parseFromString(await answer.text(), "text/html");
      const fresh = doc.getElementById("live");
      const current = document.getElementById("live");
      if (fresh && current) { current.replaceWith(document.adoptNode(fresh)); }
      if (doc.title) { document.title = doc.title; }
      if (conn) { conn.textContent = ""; }
    } catch (err) {
      if (conn) { conn.textContent = "cannot reach the watcher; retrying"; }
    } finally {
      busy = false;
      if (again) { again = false; refresh(); }
    }
  }

  setInterval(refresh, every);
  if (box) {
    let pending = 0;
    const narrow = function () {
      const params = new URLSearchParams(location.search);
      if (box.value) { params.set("q", box.value); } else { params.delete("q"); }
      params.delete("page");
      const query = params.toString();
      history.replaceState(null, "", location.pathname + (query ? "?" + query : ""));
      refresh();
    };
    box.addEventListener("input", function () {
      clearTimeout(pending);
      pending = setTimeout(narrow, 200);
    });
    box.form.addEventListener("submit", function (event) {
      event.preventDefault();
      clearTimeout(pending);
      narrow();
    });
  }
})();
