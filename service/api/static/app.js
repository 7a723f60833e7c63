// Footnote's page: ask a question, watch the answer stream in from POST /v1/ask (Server-Sent
// Events read from a fetch body: EventSource can neither POST nor send a key), and open each
// [n] footnote's source document beside the answer with the cited sentence highlighted.
// Served at /documents/{id}?s=N too (the links chat frontends show): it opens that sentence.
//
// Every piece of text from the service (answers, documents, messages) goes into the page through
// textContent / text nodes, never as HTML.
"use strict";

(() => {
  const KEY_STORAGE = "footnote.apiKey";
  const MARKER = /\[(\d+)\]/g;
  const MARKERS = /((?:\[\d+\])+)([.,;:!?…)"'”’]*)/g;  // a run of markers, and what closes the sentence

  const $ = (id) => document.getElementById(id);
  const els = {
    layout: $("layout"), form: $("ask-form"), question: $("question"), stop: $("stop-button"),
    status: $("status"), spinner: $("spinner"), statusText: $("status-text"), elapsed: $("elapsed"),
    error: $("error"), result: $("result"), answerHeading: $("answer-heading"), answer: $("answer"),
    sourcesSection: $("sources-section"), sources: $("sources"), meta: $("answer-meta"),
    docPane: $("doc-pane"), docTitle: $("doc-title"), docSubtitle: $("doc-subtitle"),
    docClose: $("doc-close"), docText: $("doc-text"), legendOther: $("legend-other"),
    keyDialog: $("key-dialog"), keyForm: $("key-form"), keyMessage: $("key-message"),
    keyInput: $("key-input"), keyCancel: $("key-cancel"),
  };

  const state = {
    run: null,              // the question being answered: {controller, started, timer}
    text: "",               // the answer text so far
    citations: new Map(),   // n -> citation object of the current answer
    documents: new Map(),   // document id -> Promise of GET /v1/documents/{id}
    opener: null,           // the footnote or source button that opened the document pane
    openCitation: null,     // the citation the document pane shows
  };

  // ---- small DOM helpers ----------------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function show(node, visible) { node.hidden = !visible; }

  // ---- the API key ----------------------------------------------------------------------------

  function storedKey() {
    try { return sessionStorage.getItem(KEY_STORAGE) || ""; } catch { return ""; }
  }

  function storeKey(key) {
    try { sessionStorage.setItem(KEY_STORAGE, key); } catch { /* storage disabled: ask again next time */ }
  }

  function forgetKey() {
    try { sessionStorage.removeItem(KEY_STORAGE); } catch { /* nothing stored */ }
  }

  let keyPrompt = null;  // one dialog at a time, shared by requests that meet a 401 together

  function askForKey(rejected) {
    if (keyPrompt) return keyPrompt;
    keyPrompt = new Promise((resolve) => {
      const previousFocus = document.activeElement;
      els.keyMessage.textContent = rejected
        ? "The service did not accept that API key. Enter a valid key."
        : "This service needs an API key. It is kept in this browser tab only, until you close it.";
      els.keyInput.value = "";
      const finish = (value) => {
        els.keyForm.removeEventListener("submit", onSubmit);
        els.keyCancel.removeEventListener("click", onCancel);
        els.keyDialog.removeEventListener("cancel", onCancel);
        if (els.keyDialog.open) els.keyDialog.close();
        if (previousFocus && previousFocus.focus) previousFocus.focus();
        resolve(value);
      };
      const onSubmit = (event) => {
        event.preventDefault();
        const value = els.keyInput.value.trim();
        if (value) finish(value); else els.keyInput.focus();
      };
      const onCancel = (event) => { event.preventDefault(); finish(null); };
      els.keyForm.addEventListener("submit", onSubmit);
      els.keyCancel.addEventListener("click", onCancel);
      els.keyDialog.addEventListener("cancel", onCancel);
      els.keyDialog.showModal();
      els.keyInput.focus();
    }).finally(() => { keyPrompt = null; });
    return keyPrompt;
  }

  // fetch with the stored key; on 401, ask for a key and try again (a cancelled dialog returns
  // the 401 response, for the caller to show its message).
  async function apiFetch(path, options = {}, onKeyWait = () => {}) {
    for (;;) {
      const key = storedKey();
      const headers = new Headers(options.headers || {});
      if (key) headers.set("Authorization", `Bearer ${key}`);
      const response = await fetch(path, { ...options, headers });
      if (response.status !== 401) return response;
      if (key) forgetKey();
      onKeyWait();
      const entered = await askForKey(Boolean(key));
      if (!entered) return response;
      if (response.body) response.body.cancel().catch(() => {});
      storeKey(entered);
    }
  }

  async function errorMessage(response) {
    let message = "";
    try {
      const body = await response.json();
      message = (body && body.error && body.error.message) || "";
    } catch { /* not JSON */ }
    if (!message) message = `The service answered ${response.status} ${response.statusText}`.trim() + ".";
    const retry = response.headers.get("Retry-After");
    if (retry && /^\d+$/.test(retry)) message += ` Try again in ${retry} s.`;
    return message;
  }

  // ---- Server-Sent Events from a fetch body ---------------------------------------------------

  function parseEventBlock(block) {
    let event = "message";
    const data = [];
    for (const line of block.split(/\r\n|\n|\r/)) {
      if (!line || line.startsWith(":")) continue;  // a comment (keep-alive ping)
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    return data.length ? { event, data: data.join("\n") } : null;
  }

  async function* serverSentEvents(response) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let boundary;
        while ((boundary = /\r\n\r\n|\n\n|\r\r/.exec(buffer))) {
          const parsed = parseEventBlock(buffer.slice(0, boundary.index));
          buffer = buffer.slice(boundary.index + boundary[0].length);
          if (parsed) yield parsed;
        }
      }
      const last = parseEventBlock(buffer + decoder.decode());
      if (last) yield last;
    } finally {
      reader.cancel().catch(() => {});
    }
  }

  // ---- the working indicator ------------------------------------------------------------------

  function setStatus(text) { els.statusText.textContent = text; }

  function startWorking(run) {
    els.status.classList.add("working");
    show(els.spinner, true);
    setStatus("Working on the answer…");
    const tick = () => {
      els.elapsed.textContent = `${Math.floor((performance.now() - run.started) / 1000)} s`;
    };
    tick();
    run.timer = setInterval(tick, 250);
    els.stop.hidden = false;
  }

  function stopWorking(run) {
    clearInterval(run.timer);
    els.status.classList.remove("working");
    show(els.spinner, false);
    els.elapsed.textContent = "";
    els.stop.hidden = true;
    els.answer.setAttribute("aria-busy", "false");
  }

  function seconds(run) { return ((performance.now() - run.started) / 1000).toFixed(1); }

  // ---- rendering the answer -------------------------------------------------------------------

  function footnoteButton(citation) {
    const button = el("button", "footnote", `[${citation.n}]`);
    button.type = "button";
    button.dataset.n = String(citation.n);
    button.setAttribute("aria-label",
      `Source ${citation.n}: ${citation.document}, sentence ${citation.sentence}`);
    button.addEventListener("click", () => openCitation(citation.n, button));
    return button;
  }

  // The answer with its [n] markers as footnote buttons. A run of markers and the punctuation
  // right after it ("[1][2].") are kept on one line, so a full stop never starts a line.
  function renderAnswer() {
    const fragment = document.createDocumentFragment();
    let last = 0;
    for (const match of state.text.matchAll(MARKERS)) {
      const numbers = [...match[1].matchAll(MARKER)].map((m) => Number(m[1]));
      if (!numbers.some((n) => state.citations.has(n))) continue;  // unknown: left as plain text
      if (match.index > last) fragment.append(state.text.slice(last, match.index));
      const group = el("span", "cite-group");
      for (const n of numbers) {
        const citation = state.citations.get(n);
        group.append(citation ? footnoteButton(citation) : `[${n}]`);
      }
      if (match[2]) group.append(match[2]);
      fragment.append(group);
      last = match.index + match[0].length;
    }
    if (last < state.text.length) fragment.append(state.text.slice(last));
    els.answer.replaceChildren(fragment);
  }

  function renderSources() {
    const items = [...state.citations.values()].sort((a, b) => a.n - b.n).map((citation) => {
      const item = el("li", "source");
      item.id = `source-${citation.n}`;
      item.dataset.n = String(citation.n);
      const open = el("button", "source-open");
      open.type = "button";
      open.dataset.n = String(citation.n);
      open.append(el("span", "source-n", `[${citation.n}]`), " ",
        el("span", "source-doc", citation.document), " ",
        el("span", "source-sentence", `sentence ${citation.sentence}`));
      open.setAttribute("aria-label",
        `Open source ${citation.n}: ${citation.document}, sentence ${citation.sentence}`);
      open.addEventListener("click", () => openCitation(citation.n, open));
      item.append(open, el("blockquote", "source-quote", citation.text));
      return item;
    });
    els.sources.replaceChildren(...items);
    show(els.sourcesSection, items.length > 0);
  }

  function resetAnswer() {
    state.text = "";
    state.citations = new Map();
    els.answer.replaceChildren();
    els.answer.classList.remove("refusal");
    els.answer.setAttribute("aria-busy", "true");
    els.answerHeading.textContent = "Answer";
    els.sources.replaceChildren();
    show(els.sourcesSection, false);
    els.meta.replaceChildren();
    show(els.result, false);
    showError("");
  }

  function showError(message) {
    els.error.textContent = message;
    show(els.error, Boolean(message));
  }

  function finishAnswer(answer, run) {
    state.text = answer.answer || "";
    state.citations = new Map((answer.citations || []).map((c) => [c.n, c]));
    show(els.result, true);
    const time = seconds(run);
    if (answer.answerable) {
      els.answer.classList.remove("refusal");
      els.answerHeading.textContent = "Answer";
      renderAnswer();
      renderSources();
      setStatus(`Answered in ${time} s.`);
    } else {
      // A refusal: the plain message, no footnotes, no sources.
      state.citations = new Map();
      els.answer.classList.add("refusal");
      els.answerHeading.textContent = "No answer in the documents";
      els.answer.replaceChildren(el("p", "refusal-text", state.text));
      renderSources();
      setStatus(`No answer found (${time} s).`);
    }
    const by = [answer.backend, answer.model && answer.model !== answer.backend ? answer.model : ""];
    els.meta.replaceChildren(el("span", "by", `Answered by: ${by.filter(Boolean).join(" · ")}`));
    for (const warning of answer.warnings || []) els.meta.append(el("span", "warning", `Note: ${warning}`));
  }

  // ---- asking ---------------------------------------------------------------------------------

  async function ask(question) {
    if (state.run) state.run.controller.abort();
    closeDocument(false);
    resetAnswer();
    const run = { controller: new AbortController(), started: performance.now(), timer: 0 };
    state.run = run;
    startWorking(run);
    const current = () => state.run === run;
    try {
      const response = await apiFetch("/v1/ask", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify({ question, stream: true }),
        signal: run.controller.signal,
      }, () => { if (current()) setStatus("Waiting for the API key…"); });
      if (!current()) return;
      if (!response.ok) {
        showError(await errorMessage(response));
        setStatus("");
        return;
      }
      setStatus("Working on the answer…");
      for await (const { event, data } of serverSentEvents(response)) {
        if (!current()) return;
        let payload;
        try { payload = JSON.parse(data); } catch { continue; }
        if (event === "citation") {
          state.citations.set(payload.n, payload);
          renderSources();
        } else if (event === "delta") {
          state.text += payload.text || "";
          show(els.result, true);
          renderAnswer();
          setStatus("Writing the answer…");
        } else if (event === "done") {
          finishAnswer(payload, run);
          return;
        } else if (event === "error") {
          showError((payload.error && payload.error.message) || "The service failed to answer.");
          setStatus("");
          return;
        }
      }
      showError("The connection closed before the answer was complete.");
      setStatus("");
    } catch (err) {
      if (!current()) return;
      if (err && err.name === "AbortError") {
        setStatus(`Stopped after ${seconds(run)} s.`);
      } else {
        showError(`Could not reach the service: ${err && err.message ? err.message : err}`);
        setStatus("");
      }
    } finally {
      clearInterval(run.timer);
      if (current()) {
        stopWorking(run);
        state.run = null;
      }
    }
  }

  els.form.addEventListener("submit", (event) => {
    event.preventDefault();
    const question = els.question.value.trim();
    if (!question) {
      showError("Type a question first.");
      els.question.focus();
      return;
    }
    ask(question);
  });

  els.question.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      els.form.requestSubmit();
    }
  });

  els.stop.addEventListener("click", () => {
    if (state.run) state.run.controller.abort();
    els.question.focus();
  });

  // ---- the document pane ----------------------------------------------------------------------

  function documentPath(id) {
    return "/v1/documents/" + id.split("/").map(encodeURIComponent).join("/");
  }

  function loadDocument(id) {
    if (!state.documents.has(id)) {
      const loading = (async () => {
        const response = await apiFetch(documentPath(id));
        if (!response.ok) throw new Error(await errorMessage(response));
        return response.json();
      })();
      loading.catch(() => state.documents.delete(id));
      state.documents.set(id, loading);
    }
    return state.documents.get(id);
  }

  // Offsets from the service count characters (code points); JavaScript strings count UTF-16
  // units. The two differ only when the text holds characters outside the BMP (emoji...).
  function codePointSlicer(text) {
    if (!/[\uD800-\uDFFF]/.test(text)) return (start, end) => text.slice(start, end);
    const units = [];
    let at = 0;
    for (const ch of text) { units.push(at); at += ch.length; }
    units.push(at);
    const unit = (i) => (i < units.length ? units[i] : at);
    return (start, end) => text.slice(unit(start), unit(end));
  }

  function openCitation(n, opener) {
    const citation = state.citations.get(n);
    if (citation) openSentence(citation, opener);
  }

  // `citation`: {document, sentence, n?}; a linked sentence has no n.
  async function openSentence(citation, opener) {
    state.opener = opener;
    state.openCitation = citation;
    els.layout.classList.add("with-document");
    show(els.docPane, true);
    els.docTitle.textContent = citation.document;
    els.docSubtitle.textContent = "Loading the document…";
    if (els.docText.dataset.document !== citation.document) els.docText.replaceChildren();
    for (const b of document.querySelectorAll(".footnote, .source-open")) {
      b.classList.toggle("active", Number(b.dataset.n) === citation.n);
    }
    let doc;
    try {
      doc = await loadDocument(citation.document);
    } catch (err) {
      if (state.openCitation === citation) els.docSubtitle.textContent = `Could not open the document: ${err.message}`;
      return;
    }
    if (state.openCitation !== citation) return;  // another footnote was opened meanwhile
    renderDocument(doc, citation);
  }

  function renderDocument(doc, citation) {
    const slice = codePointSlicer(doc.text);
    const others = new Set();
    for (const c of state.citations.values()) {
      if (c.document === doc.id && c.sentence !== citation.sentence) others.add(c.sentence);
    }
    const fragment = document.createDocumentFragment();
    let position = 0;
    let current = null;
    for (const s of doc.sentences) {
      if (s.start > position) fragment.append(slice(position, s.start));
      let node;
      if (s.sentence === citation.sentence) {
        node = current = el("mark", "sentence hl-current");
        node.tabIndex = -1;
      } else if (others.has(s.sentence)) {
        node = el("mark", "sentence hl-other");
      } else {
        node = el("span", "sentence");
      }
      node.dataset.sentence = String(s.sentence);
      node.title = `Sentence ${s.sentence}`;
      node.textContent = slice(s.start, s.end);
      fragment.append(node);
      position = Math.max(position, s.end);
    }
    const length = [...doc.text].length;
    if (position < length) fragment.append(slice(position, length));
    els.docText.replaceChildren(fragment);
    els.docText.dataset.document = doc.id;
    show(els.legendOther, others.size > 0);

    const cites = [...state.citations.values()].filter((c) => c.sentence === citation.sentence
      && c.document === citation.document).map((c) => `[${c.n}]`).join(" ");
    els.docSubtitle.textContent = !current
      ? `This document has no sentence ${citation.sentence}; it has ${doc.sentence_count}.`
      : `Sentence ${citation.sentence} of ${doc.sentence_count}` + (cites ? `, cited as ${cites}` : "") +
        (others.size ? `; ${others.size} more cited sentence${others.size > 1 ? "s" : ""} marked lightly` : "");
    if (current) {
      current.scrollIntoView({ block: "center" });
      current.focus({ preventScroll: true });
    }
  }

  function closeDocument(restoreFocus = true) {
    state.openCitation = null;
    show(els.docPane, false);
    els.layout.classList.remove("with-document");
    for (const b of document.querySelectorAll(".footnote.active, .source-open.active")) b.classList.remove("active");
    const opener = state.opener;
    state.opener = null;
    if (restoreFocus && opener && opener.isConnected) opener.focus();
  }

  els.docClose.addEventListener("click", () => closeDocument());

  // /documents/{id}?s=N (or #sN): the sentence a chat frontend's source links to.
  function linkedSentence() {
    const match = /^\/documents\/(.+)$/.exec(location.pathname);
    if (!match) return null;
    let id;
    try { id = match[1].split("/").map(decodeURIComponent).join("/"); } catch { return null; }
    const hash = /^#s(\d+)$/.exec(location.hash);
    const sentence = Number(new URLSearchParams(location.search).get("s") || (hash && hash[1]) || 1);
    return Number.isInteger(sentence) && sentence > 0 ? { document: id, sentence } : null;
  }

  const linked = linkedSentence();
  if (linked) openSentence(linked, els.question);
  els.docPane.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      closeDocument();
    }
  });
})();
