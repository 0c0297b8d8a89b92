// The chat page: sends each message to POST /api/chat and shows the answer.
// The conversation's context (what follow-up questions an answer allows) travels as the token of the last answer,
// kept in memory only: a new page starts a new conversation.
// Every text from the server or the user goes in with textContent, never innerHTML: an answer holding markup
// is shown as written and cannot run. The page's Content-Security-Policy forbids inline script as a second guard.
"use strict";

(() => {
  const TIMEOUT_MS = 10000;
  const UNSURE_BELOW = 0.5; // answered, but with a confidence worth flagging

  const form = document.getElementById("composer");
  const input = document.getElementById("message");
  const conversation = document.getElementById("conversation");
  const status = document.getElementById("status");
  const RESETS = {
    expired: "The conversation had been idle too long, so it starts over.",
    invalid: "The conversation could not be continued, so it starts over.",
    unknown_names: "The bot was updated, so part of the conversation was forgotten.",
  };
  let contextToken = null;
  let feedbackOn = false; // the server keeps a message log: a thumbs-down reaches the bot's author

  function percent(confidence) {
    return `${Math.round(confidence * 100)}%`;
  }

  function addMessage(role, text) {
    const item = document.createElement("li");
    item.className = `message ${role}`;
    const bubble = document.createElement("div");
    bubble.className = "bubble";
    bubble.textContent = text;
    item.appendChild(bubble);
    conversation.appendChild(item);
    conversation.scrollTop = conversation.scrollHeight;
    return item;
  }

  function addNote(item, text, kind) {
    item.appendChild(noteElement(text, kind));
    conversation.scrollTop = conversation.scrollHeight;
  }

  function addTyping() {
    const item = addMessage("bot typing", "");
    item.firstChild.setAttribute("aria-label", "The bot is typing");
    for (let i = 0; i < 3; i += 1) {
      item.firstChild.appendChild(document.createElement("span"));
    }
    return item;
  }

  function setStatus(state, text) {
    status.dataset.state = state;
    status.textContent = text;
  }

  function addFeedback(item, asked, answer, model, token) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "feedback";
    button.textContent = "👎 Not what I meant";
    button.setAttribute("aria-label", "Tell the bot's author this answer was wrong");
    button.addEventListener("click", async () => {
      button.disabled = true;
      const payload = { message: asked, intent: answer.intent, model };
      if (token) {
        payload.context = token;
      }
      try {
        const response = await postJson("/api/feedback", payload);
        const thanks = response.ok ? "Thanks — noted for the bot's author." : "Could not send that.";
        button.replaceWith(noteElement(thanks, response.ok ? "meta" : "unsure"));
      } catch (error) {
        button.replaceWith(noteElement("Could not send that.", "unsure"));
      }
    });
    item.appendChild(button);
  }

  function noteElement(text, kind) {
    const note = document.createElement("div");
    note.className = `note ${kind}`;
    note.textContent = text;
    return note;
  }

  function showAnswer(answer, asked, model) {
    const context = answer.context || {};
    contextToken = context.token || null;
    if (context.reset && RESETS[context.reset]) {
      addMessage("notice", RESETS[context.reset]);
    }
    const item = addMessage("bot", answer.response);
    const active = (context.active || []).length ? ` · context: ${context.active.join(", ")}` : "";
    const guess = `${answer.intent} · ${percent(answer.confidence)}${active}`;
    if (answer.fallback) {
      addNote(item, `Not sure — try rephrasing (closest: ${guess})`, "unsure");
    } else if (answer.confidence < UNSURE_BELOW) {
      addNote(item, `A guess: ${guess}`, "unsure");
    } else {
      addNote(item, guess, "meta");
    }
    if (feedbackOn) {
      addFeedback(item, asked, answer, model, context.token);
    }
  }

  async function postJson(url, payload) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
    try {
      return await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(payload),
        signal: controller.signal,
      });
    } finally {
      clearTimeout(timer);
    }
  }

  async function send(text) {
    addMessage("user", text);
    const typing = addTyping();
    try {
      const payload = contextToken ? { message: text, context: contextToken } : { message: text };
      const response = await postJson("/api/chat", payload);
      const body = await response.json().catch(() => null);
      typing.remove();
      if (status.dataset.state !== "online") {
        checkHealth();
      }
      if (response.ok && body) {
        showAnswer(body, text, response.headers.get("X-Model-Digest") || "");
      } else if (body && body.error) {
        addMessage("error", `The server could not answer: ${body.error}`);
      } else {
        addMessage("error", `The server answered with an error (HTTP ${response.status}). Try again in a moment.`);
      }
    } catch (error) {
      typing.remove();
      setStatus("offline", "offline");
      addMessage(
        "error",
        error.name === "AbortError"
          ? "The server did not answer in time. Try again in a moment."
          : "Cannot reach the chatbot server. Check that it is running, then try again.",
      );
    }
  }

  async function checkHealth() {
    try {
      const response = await fetch("/api/health", { headers: { Accept: "application/json" } });
      const body = await response.json();
      feedbackOn = body.feedback === true;
      setStatus("online", `online · ${body.model.intents} intents`);
    } catch (error) {
      setStatus("offline", "offline");
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) {
      return;
    }
    input.value = "";
    input.focus();
    send(text);
  });

  checkHealth();
})();
