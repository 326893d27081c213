// The player's page: nickname -> create or join a room -> lobby, questions, reveals, leaderboard.
"use strict";

(() => {
  const { $ } = Quiz;
  const VIEWS = ["view-lobby", "view-question", "view-reveal", "view-finished"];
  const game = {
    socket: null, hostId: null, question: null, pending: null, countdown: null, roomId: null,
    rematch: null,
  };
  window.quizPlay = game;  // for the browser test and for poking around in the dev tools

  function panel(id) {
    for (const p of ["panel-name", "panel-room", "panel-missing", "panel-game"]) {
      $(p).hidden = p !== id;
    }
  }

  function roomFromUrl() {
    const room = new URLSearchParams(location.search).get("room");
    return room && /^[A-Za-z0-9_-]{1,16}$/.test(room) ? room : null;
  }

  function setRoomInUrl(roomId) {
    const url = new URL(location.href);
    if (roomId) url.searchParams.set("room", roomId); else url.searchParams.delete("room");
    history.replaceState(null, "", url);
  }

  // --- nickname and room forms ---

  $("form-name").addEventListener("submit", async (event) => {
    event.preventDefault();
    const reply = await Quiz.api("POST", "/api/players", { nickname: $("nickname").value });
    if (reply.status !== 201) { Quiz.toast(reply.body ? reply.body.message : "failed"); return; }
    Quiz.meSave(reply.body);
    route();
  });

  // A code read off a projector may be typed in lower case or with spaces: "abc 234" is ABC234.
  // (Room codes use capitals and digits only; an id of another shape is kept as it was typed.)
  function roomCodeClean(typed) {
    const text = typed.replace(/\s+/g, "");
    const upper = text.toUpperCase();
    return /^[2-9A-HJKMNP-Z]{6}$/.test(upper) ? upper : text;
  }

  $("form-join").addEventListener("submit", (event) => {
    event.preventDefault();
    goRoom(roomCodeClean($("room-input").value));
  });

  $("form-create").addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { questions: Number($("questions-input").value),
                   seconds: Number($("seconds-input").value) };
    const reply = await Quiz.api("POST", "/api/rooms", body, Quiz.me().ticket);
    if (reply.status === 401) { Quiz.meForget(); route(); return; }
    if (reply.status !== 201) { Quiz.toast(reply.body ? reply.body.message : "failed"); return; }
    goRoom(reply.body.room_id);
  });

  // Leave the room this page is in (if any) for another one, or for the room forms (null).
  function goRoom(roomId) {
    if (game.socket) game.socket.close();
    Object.assign(game, { socket: null, question: null, pending: null, hostId: null });
    setRoomInUrl(roomId);
    route();
  }

  $("btn-start").addEventListener("click", () => game.socket.send({ type: "start" }));
  $("btn-next").addEventListener("click", () => game.socket.send({ type: "next" }));
  $("btn-back").addEventListener("click", () => goRoom(null));
  $("btn-new").addEventListener("click", () => goRoom(null));
  $("btn-rematch-join").addEventListener("click", () => goRoom(game.rematch));
  $("btn-rematch").addEventListener("click", async () => {
    const reply = await Quiz.api("POST", `/api/rooms/${encodeURIComponent(game.roomId)}/rematch`,
                                 undefined, Quiz.me().ticket);
    if (reply.status === 200 || reply.status === 201) { goRoom(reply.body.room_id); return; }
    Quiz.toast(reply.body ? reply.body.message : "failed");
  });

  // Copy the join link: the Clipboard API where the page is a secure context (https, or
  // localhost), else the old way through the selected text (plain http on a class network).
  $("btn-copy").addEventListener("click", async () => {
    const input = $("join-url");
    let copied = false;
    if (navigator.clipboard && window.isSecureContext) {
      copied = await navigator.clipboard.writeText(input.value).then(() => true, () => false);
    }
    if (!copied) {
      input.select();
      copied = document.execCommand("copy");
    }
    $("btn-copy").textContent = copied ? "Copied" : "Select and copy";
    setTimeout(() => { $("btn-copy").textContent = "Copy"; }, 2000);
  });

  // --- rendering frames ---

  function isHost() { return game.hostId === Quiz.me().user_id; }

  function renderLobby(players) {
    Quiz.showOnly(VIEWS, "view-lobby");
    Quiz.playersRender($("lobby-players"), players, game.hostId);
    $("btn-start").hidden = !isHost();
    $("lobby-title").textContent = isHost()
      ? "Share the code or the link, then start" : "Waiting for the host to start";
  }

  function renderQuestion(q, remaining, answered) {
    game.question = q;
    Quiz.showOnly(VIEWS, "view-question");
    $("q-index").textContent = `Question ${q.index + 1} / ${q.total}`;
    $("q-text").textContent = q.text;
    $("progress").textContent = "";
    const box = $("choices");
    Quiz.clear(box);
    q.choices.forEach((text, i) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "choice c" + i;
      button.dataset.testid = "choice-" + i;
      button.dataset.choice = i;
      const letter = document.createElement("span");
      letter.className = "letter";
      letter.textContent = "ABCD"[i] || String(i + 1);
      button.append(letter, text);
      button.disabled = answered;
      button.addEventListener("click", () => answer(q.question_id, i));
      box.appendChild(button);
    });
    $("ack-status").textContent = answered ? "Answer received" : "";
    game.countdown.start(remaining, q.seconds);
  }

  function answer(questionId, choice) {
    game.pending = { question_id: questionId, choice };
    for (const b of $("choices").children) {
      b.disabled = true;
      b.classList.toggle("picked", Number(b.dataset.choice) === choice);
    }
    $("ack-status").textContent = "Sending...";
    game.socket.send({ type: "answer", question_id: questionId, choice });
  }

  function renderReveal(r) {
    game.countdown.stop();
    Quiz.showOnly(VIEWS, "view-reveal");
    const q = game.question;
    const mine = game.pending && game.pending.question_id === r.question_id ? game.pending : null;
    const right = mine && mine.choice === r.correct;
    $("reveal-title").textContent = !mine ? "Time is up" : right ? "Correct!" : "Not this time";
    const label = (i) => (q && q.question_id === r.question_id
      ? `${"ABCD"[i] || i + 1}: ${q.choices[i]}` : `#${i + 1}`);
    $("reveal-correct").textContent = label(r.correct);
    $("reveal-points").textContent = r.points || 0;
    $("reveal-mine").hidden = !mine;
    if (mine) $("reveal-mine-choice").textContent = label(mine.choice);
    Quiz.scoresRender($("scores"), r.scores, Quiz.me().user_id, 10);
    myScore(r.scores);
    const last = q && q.index + 1 >= q.total;
    $("btn-next").hidden = !isHost();
    $("btn-next").textContent = last ? "Show the results" : "Next question";
    $("next-hint").textContent = last ? "" : "The next question opens in a moment.";
  }

  function myScore(rows) {
    const row = rows.find((s) => s.user_id === Quiz.me().user_id);
    if (row) $("my-score").textContent = row.score;
  }

  function renderFinished(board, rematch) {
    game.countdown.stop();
    Quiz.showOnly(VIEWS, "view-finished");
    game.rematch = rematch || null;
    $("rematch-note").hidden = !game.rematch;
    $("btn-rematch").hidden = !isHost() || Boolean(game.rematch);
    Quiz.scoresRender($("leaderboard"), board, Quiz.me().user_id);
    myScore(board);
    $("results-link").href = `/api/rooms/${game.roomId}/results?format=csv`;
  }

  function onFrame(frame) {
    switch (frame.type) {
      case "state": return onState(frame);
      case "lobby": game.hostId = frame.host_id; return renderLobby(frame.players);
      case "question": return renderQuestion(frame, frame.seconds, false);
      case "answer_ack":
        $("ack-status").textContent = "Answer received";
        return;
      case "progress":
        $("progress").textContent = `${frame.answered} / ${frame.total} answered`;
        return;
      case "reveal": return renderReveal(frame);
      case "finished": return renderFinished(frame.leaderboard, null);
      case "rematch": return goRoom(frame.room_id);  // the host started it: everyone follows
      case "error":
        if (frame.code === "duplicate_answer") {
          $("ack-status").textContent = "Answer received";  // the server has it already
          return;
        }
        if (frame.code === "too_late") $("ack-status").textContent = frame.message;
        Quiz.toast(`${frame.code}: ${frame.message}`);
        return;
      default:
        return;
    }
  }

  function onState(s) {
    game.hostId = s.host_id;
    $("my-score").textContent = s.you.score;
    $("screen-link").hidden = !isHost();
    if (s.phase === "lobby") return renderLobby(s.players);
    if (s.phase === "question") {
      renderQuestion(s.question, s.remaining, s.answered);
      if (!s.answered && game.pending && game.pending.question_id === s.question.question_id) {
        answer(game.pending.question_id, game.pending.choice);  // lost in a reconnect: again
      }
      return;
    }
    if (s.phase === "reveal") {
      game.question = s.question;
      return renderReveal(s.reveal);
    }
    if (s.phase === "finished") {
      $("finished-note").hidden = false;  // came back, or came late: the game is over
      return renderFinished(s.leaderboard, s.rematch);
    }
  }

  // A room id from a link or the join form: a room that does not exist gets a page that says so,
  // not a socket retrying a refused handshake for ever.
  async function enterRoom(roomId) {
    const me = Quiz.me();
    const known = await Quiz.api("GET", `/api/rooms/${encodeURIComponent(roomId)}/results`)
      .catch(() => null);  // the server is away: the socket below says so, and retries
    if (known && known.status === 404) {
      $("missing-id").textContent = roomId;
      panel("panel-missing");
      return;
    }
    panel("panel-game");
    game.roomId = roomId;
    $("room-id").textContent = roomId;
    $("share-code").textContent = roomId;
    $("join-url").value = `${location.origin}/play?room=${encodeURIComponent(roomId)}`;
    $("screen-link").href =
      `/screen/${encodeURIComponent(roomId)}#ticket=${encodeURIComponent(me.ticket)}`;
    Quiz.showOnly(VIEWS, null);
    game.countdown = game.countdown || new Quiz.Countdown($("countdown"), $("timer-bar"));
    game.socket = new Quiz.GameSocket({ roomId, userId: me.user_id, ticket: me.ticket,
                                        watch: false, onFrame });
    game.socket.connect();
  }

  function route() {
    const me = Quiz.me();
    const room = roomFromUrl();
    if (!me) { panel("panel-name"); $("nickname").focus(); return; }
    $("me-name").textContent = me.nickname;
    if (room) { enterRoom(room); return; }
    if (new URLSearchParams(location.search).has("room")) {  // not even a room id's characters
      $("missing-id").textContent = new URLSearchParams(location.search).get("room");
      panel("panel-missing");
      return;
    }
    panel("panel-room");
  }

  route();
})();
