/* litscreen workspace: the progress poller and the review queue's keys. No inline script: the CSP forbids it. */
(function () {
  "use strict";

  function formatEta(seconds) {
    if (seconds === null || seconds === undefined) { return "–"; }
    if (seconds < 90) { return Math.round(seconds) + " s"; }
    if (seconds < 5400) { return Math.round(seconds / 60) + " min"; }
    return (seconds / 3600).toFixed(1) + " h";
  }

  function renderBatches(batches) {
    var body = document.getElementById("batches");
    if (!body) { return; }
    var rows = document.createDocumentFragment();
    batches.forEach(function (batch) {
      var row = document.createElement("tr");
      [batch.batch_index, batch.status, batch.cursor + " / " + batch.size, batch.attempts, batch.error || ""]
        .forEach(function (value) {
          var cell = document.createElement("td");
          cell.textContent = value;
          row.appendChild(cell);
        });
      rows.appendChild(row);
    });
    body.replaceChildren(rows);
  }

  function startPoller(section) {
    var url = section.getAttribute("data-poll-url");
    if (!url || section.getAttribute("data-final") === "true") { return; }
    function set(name, value) {
      var nodes = section.querySelectorAll('[data-field="' + name + '"]');
      for (var i = 0; i < nodes.length; i++) { nodes[i].textContent = value; }
    }
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) { if (!response.ok) { throw new Error(response.status); } return response.json(); })
        .then(function (doc) {
          set("status", doc.status.replace(/_/g, " "));
          ["processed_items", "total_items", "processed_batches", "total_batches", "conflict_items", "failed_items",
           "retries", "failed_batches"].forEach(function (name) { set(name, doc[name]); });
          set("rate_per_minute", doc.rate_per_minute === null ? "–" : doc.rate_per_minute);
          set("eta", formatEta(doc.eta_seconds));
          set("cost_estimate", Number(doc.cost_estimate).toFixed(4));
          var bar = document.getElementById("progress-bar");
          if (bar) { bar.value = doc.progress; bar.textContent = Math.round(doc.progress * 100) + " %"; }
          var error = section.querySelector('[data-field="error"]');
          if (error) { error.hidden = !doc.error; error.textContent = doc.error || ""; }
          renderBatches(doc.batches || []);
          if (doc.final) { window.location.reload(); return; }
          window.setTimeout(poll, 1500);
        })
        .catch(function () { window.setTimeout(poll, 5000); });
    }
    window.setTimeout(poll, 1000);
  }

  function isTyping(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  function startQueueKeys(form) {
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && isTyping(event.target)) { event.target.blur(); return; }
      if (event.altKey || event.ctrlKey || event.metaKey || isTyping(event.target)) { return; }
      var key = event.key.toLowerCase();
      var target = null;
      if (key === "i") { target = document.getElementById("include"); }
      else if (key === "e") { target = document.getElementById("exclude"); }
      else if (key === "s") { target = document.getElementById("skip"); }
      else if (key === "n") { event.preventDefault(); document.getElementById("note").focus(); return; }
      else if (key === "r") { event.preventDefault(); document.getElementById("reason").focus(); return; }
      if (target) { event.preventDefault(); target.click(); }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var section = document.getElementById("progress");
    if (section) { startPoller(section); }
    var form = document.getElementById("decide-form");
    if (form) { startQueueKeys(form); }
  });
})();
