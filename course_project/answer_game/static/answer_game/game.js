// Shared by play.js and screen.js: the player in sessionStorage, JSON API calls, the game
// websocket (ticket as subprotocol, reconnect with backoff), a countdown, list rendering.
"use strict";

const Quiz = (() => {
  const KEY = "quiz.me";
  const $ = (id) => document.getElementById(id);

  function me() {
    try { return JSON.parse(sessionStorage.getItem(KEY)); } catch (e) { return null; }
  }
  function meSave(player) { sessionStorage.setItem(KEY, JSON.stringify(player)); }
  function meForget() { sessionStorage.removeItem(KEY); }

  async function api(method, path, body, ticket) {
    const headers = { "Content-Type": "application/json" };
    if (ticket) headers.Authorization = "Bearer " + ticket;
    const reply = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await reply.json(); } catch (e) { data = null; }
    return { status: reply.status, body: data };
  }

  let toastTimer = null;
  function toast(text) {
    const el = $("error-msg");
    el.textContent = text;
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.hidden = true; }, 3500);
  }

  // The connection pill: the game socket's state, or nothing while the page has no socket.
  function connStatus(text) {
    const el = $("conn-status");
    el.hidden = !text;
    el.textContent = text || "";
    el.dataset.state = text || "none";
  }

  function showOnly(ids, visible) {
    for (const id of ids) $(id).hidden = id !== visible;
  }

  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); }

  function li(text, attrs) {
    const item = document.createElement("li");
    item.textContent = text;
    for (const [k, v] of Object.entries(attrs || {})) item.setAttribute(k, v);
    return item;
  }

  // rows: {user_id, nickname, score, rank?}; the player's own row is highlighted.
  function scoresRender(ol, rows, myId, limit) {
    clear(ol);
    for (const row of rows.slice(0, limit || rows.length)) {
      const item = document.createElement("li");
      item.dataset.testid = row.rank !== undefined ? "leader-row" : "score-row";
      item.dataset.userId = row.user_id;
      if (row.user_id === myId) item.classList.add("me");
      const rank = document.createElement("span");
      rank.className = "rank";
      rank.textContent = row.rank !== undefined ? "#" + row.rank : "";
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = row.nickname;
      const score = document.createElement("span");
      score.className = "score";
      score.dataset.testid = "score";
      score.textContent = row.score;
      item.append(rank, name, score);
      ol.appendChild(item);
    }
  }

  function playersRender(ul, players, hostId) {
    clear(ul);
    for (const p of players) {
      const item = li(p.nickname + (p.user_id === hostId ? " (host)" : ""),
                      { "data-testid": "lobby-player", "data-user-id": p.user_id });
      if (!p.connected) item.classList.add("away");
      ul.appendChild(item);
    }
  }

  // The game websocket. Reconnects after any drop (0.3 s, 0.6 s, ... up to 8 s) until close().
  class GameSocket {
    constructor({ roomId, userId, ticket, watch, onFrame }) {
      Object.assign(this, { roomId, userId, ticket, watch, onFrame });
      this.attempt = 0;
      this.ws = null;
      this.stopped = false;
      this.queue = [];
    }
    url() {
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      return `${scheme}//${location.host}/ws/game/controller/${encodeURIComponent(this.roomId)}/` +
        `${this.userId}${this.watch ? "?watch=1" : ""}`;
    }
    connect() {
      if (this.stopped) return;
      connStatus(this.attempt ? "reconnecting" : "connecting");
      const ws = this.ws = new WebSocket(this.url(), [this.ticket]);
      ws.onopen = () => {
        this.attempt = 0;
        connStatus("online");
        for (const frame of this.queue.splice(0)) ws.send(JSON.stringify(frame));
      };
      ws.onmessage = (event) => {
        let frame;
        try { frame = JSON.parse(event.data); } catch (e) { return; }
        this.onFrame(frame);
      };
      ws.onclose = () => {
        if (this.ws !== ws || this.stopped) return;
        this.attempt += 1;
        const delay = Math.min(8000, 300 * 2 ** (this.attempt - 1)) * (0.8 + Math.random() * 0.4);
        connStatus("reconnecting");
        setTimeout(() => this.connect(), delay);
      };
    }
    send(frame) {
      if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
      else this.queue.push(frame);
    }
    close() {
      this.stopped = true;
      if (this.ws) this.ws.close(1000);
      connStatus(null);
    }
  }

  // A countdown driven by the server's remaining time, drawn on the client's own clock.
  class Countdown {
    constructor(textEl, barEl) { this.textEl = textEl; this.barEl = barEl; this.timer = null; }
    start(remaining, total) {
      this.stop();
      const end = performance.now() + remaining * 1000;
      const draw = () => {
        const left = Math.max(0, (end - performance.now()) / 1000);
        this.textEl.textContent = left.toFixed(1) + " s";
        if (this.barEl) this.barEl.style.width = (100 * left / total).toFixed(1) + "%";
        if (left <= 0) this.stop();
      };
      draw();
      this.timer = setInterval(draw, 100);
    }
    stop() { clearInterval(this.timer); this.timer = null; }
  }

  function ticketUser(ticket) {
    const part = (ticket || "").split(".")[1];
    return /^[0-9]+$/.test(part || "") ? Number(part) : null;
  }

  return { $, me, meSave, meForget, api, toast, connStatus, showOnly, clear, li, scoresRender,
           playersRender, GameSocket, Countdown, ticketUser };
})();
