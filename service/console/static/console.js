// Titan console: what every page does with a little script. Pages work without it
// (plain forms); it adds local times, confirmations and the CSRF header for htmx.
"use strict";

function localTimes(root) {
  // <time datetime="ISO"> in the reader's timezone (the server writes UTC).
  for (const el of root.querySelectorAll("time[datetime]")) {
    const at = new Date(el.getAttribute("datetime"));
    if (!isNaN(at)) {
      el.textContent = at.toLocaleString(undefined, {
        year: "numeric", month: "short", day: "numeric",
        hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
      });
      el.title = at.toISOString();
    }
  }
}

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) event.preventDefault();
});

document.addEventListener("htmx:configRequest", (event) => {
  event.detail.headers["X-CSRF-Token"] = csrfToken();
});

document.addEventListener("htmx:afterSwap", (event) => localTimes(event.target));
document.addEventListener("DOMContentLoaded", () => localTimes(document));

// A problem's field link selects that field's key in the recipe editor: the editor's
// text is searched for each part of the path in turn ("spec.worker.memory").
function fieldOffset(text, path) {
  let at = 0;
  for (const part of path.split(".")) {
    if (/^\d+$/.test(part)) continue;  // list positions have no key to find
    const found = text.indexOf(JSON.stringify(part), at);
    if (found < 0) break;
    at = found;
  }
  return at;
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a.field-link");
  const editor = document.getElementById("recipe");
  if (!link || !editor) return;
  event.preventDefault();
  const path = link.dataset.field;
  const start = path ? fieldOffset(editor.value, path) : 0;
  const last = path.split(".").pop();
  editor.focus();
  editor.setSelectionRange(start, start + (path ? JSON.stringify(last).length : 0));
});
