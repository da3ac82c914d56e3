// The preview pages' script: reload on change, the subscriber filter, the frame views.
"use strict";
(function () {
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // Reload when a watched file changes: /__changes answers once its token differs from the
  // one this page was built from (or after a while with the same token: ask again).
  async function watch(since) {
    for (;;) {
      try {
        const response = await fetch("/__changes?since=" + encodeURIComponent(since), {
          cache: "no-store",
        });
        if (response.ok) {
          const data = await response.json();
          if (data.token !== since) {
            location.reload();
            return;
          }
          continue;
        }
      } catch (error) {
        // The server is restarting or gone: try again shortly.
      }
      await sleep(2000);
    }
  }
  const token = document.body.dataset.token;
  if (token) watch(token);

  // The subscriber filter: a row stays when it holds every word typed. The words go into the
  // address (?q=) so a reload keeps them.
  const search = document.getElementById("search");
  if (search) {
    const rows = Array.from(document.querySelectorAll("tr[data-search]"));
    const counter = document.getElementById("shown-count");
    const empty = document.getElementById("no-match");
    const apply = () => {
      const words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
      let shown = 0;
      for (const row of rows) {
        const match = words.every((word) => row.dataset.search.includes(word));
        row.hidden = !match;
        if (match) shown += 1;
      }
      if (counter) counter.textContent = String(shown);
      if (empty) empty.hidden = shown !== 0;
      const url = new URL(location.href);
      if (search.value) url.searchParams.set("q", search.value);
      else url.searchParams.delete("q");
      history.replaceState(null, "", url);
    };
    search.addEventListener("input", apply);
    search.form.addEventListener("submit", (event) => event.preventDefault());
    apply();
  }

  // Desktop and phone frames side by side, or one of them.
  const frames = document.getElementById("frames");
  const buttons = document.querySelectorAll("button[data-view]");
  for (const button of buttons) {
    button.addEventListener("click", () => {
      frames.dataset.show = button.dataset.view;
      for (const other of buttons) other.setAttribute("aria-pressed", String(other === button));
    });
  }

  // The test-send form: remember the address, and no second click while it sends.
  const sendForm = document.getElementById("send-form");
  if (sendForm) {
    const to = sendForm.elements.namedItem("to");
    if (!to.value) to.value = localStorage.getItem("digest-preview-to") || "";
    sendForm.addEventListener("submit", () => {
      localStorage.setItem("digest-preview-to", to.value);
      const button = sendForm.querySelector("button");
      button.disabled = true;
      button.textContent = "Sending…";
    });
  }
})();
