// The instructor's big screen: watches a room (not a player); the host may start and advance.
"use strict";

(() => {
  const { $ } = Quiz;
  const VIEWS = ["view-lobby", "view-question", "view-reveal", "view-finished"];
  const roomId = $("screen").dataset.room;
  // The host's page links here with #ticket=...: a fragment never reaches a server, so the
  // ticket is in no proxy's or server's access log.
  const params = new URLSearchParams(location.hash.slice(1));
  let ticket = params.get("ticket");
  if (ticket) {
    sessionStorage.setItem("quiz.screen." + roomId, ticket);
    history.replaceState(null, "", location.pathname);  // keep the ticket out of the address bar
  } else {
    ticket = sessionStorage.getItem("quiz.screen." + roomId) || (Quiz.me() || {}).ticket;
  }
  const userId = Quiz.ticketUser(ticket);
  const countdown = new Quiz.Countdown($("countdown"), $("timer-bar"));
  let hostId = null;
  let question = null;

  function host() { return hostId === userId; }

  function lobby(players) {
    Quiz.showOnly(VIEWS, "view-lobby");
    Quiz.playersRender($("lobby-players"), players, hostId);
    $("player-count").textContent = players.length;
    $("btn-start").hidden = !host();
    $("btn-next").hidden = true;
  }

  function showQuestion(q, remaining) {
    question = q;
    Quiz.showOnly(VIEWS, "view-question");
    $("q-index").textContent = `Question ${q.index + 1} / ${q.total}`;
    $("q-text").textContent = q.text;
    const list = $("choices");
    Quiz.clear(list);
    q.choices.forEach((c, i) => list.appendChild(Quiz.li(c, { class: "choice c" + i })));
    $("btn-start").hidden = true;
    $("btn-next").hidden = true;
    countdown.start(remaining, q.seconds);
  }

  function progress(answered, total) {
    $("progress").textContent = `${answered} / ${total}`;
    $("progress-bar").style.width = total ? (100 * answered / total) + "%" : "0";
  }

  function reveal(r) {
    countdown.stop();
    Quiz.showOnly(VIEWS, "view-reveal");
    $("reveal-q").textContent = question ? question.text : "";
    $("reveal-correct").textContent = question ? question.choices[r.correct] : r.correct;
    Quiz.scoresRender($("scores"), r.scores, null, 10);
    $("btn-next").hidden = !host();
  }

  function finished(board) {
    countdown.stop();
    Quiz.showOnly(VIEWS, "view-finished");
    Quiz.scoresRender($("leaderboard"), board, null);
    $("btn-next").hidden = true;
  }

  function onFrame(f) {
    if (f.type === "state") {
      hostId = f.host_id;
      if (f.phase === "lobby") lobby(f.players);
      else if (f.phase === "question") {
        showQuestion(f.question, f.remaining);
        progress(f.progress.answered, f.progress.total);
      } else if (f.phase === "reveal") { question = f.question; reveal(f.reveal); }
      else if (f.phase === "finished") finished(f.leaderboard);
    } else if (f.type === "lobby") { hostId = f.host_id; lobby(f.players); }
    else if (f.type === "question") { showQuestion(f, f.seconds); progress(0, 0); }
    else if (f.type === "progress") progress(f.answered, f.total);
    else if (f.type === "reveal") reveal(f);
    else if (f.type === "finished") finished(f.leaderboard);
    else if (f.type === "rematch") {  // the host opened a rematch: the big screen follows
      sessionStorage.setItem("quiz.screen." + f.room_id, ticket);
      location.assign("/screen/" + encodeURIComponent(f.room_id));
    } else if (f.type === "error") Quiz.toast(`${f.code}: ${f.message}`);
  }

  $("btn-start").addEventListener("click", () => socket.send({ type: "start" }));
  $("btn-next").addEventListener("click", () => socket.send({ type: "next" }));

  const socket = new Quiz.GameSocket({ roomId, userId, ticket, watch: true, onFrame });
  if (!ticket || userId === null) {
    Quiz.toast("open this page from the host's game page (it needs a ticket)");
  } else {
    socket.connect();
  }
})();
