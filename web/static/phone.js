// The sandbox phone: plays a call's steps (read by the server from the call's TwiML), then
// gathers keys the way Twilio does: until numDigits keys, the finish key, or the gather's
// timeout after the prompt has played; silence is sent as no keys (the flow re-prompts).
(function () {
  "use strict";

  var root = document.getElementById("phone");
  if (!root) return;
  var csrf = root.getAttribute("data-csrf");
  var form = document.getElementById("dial");
  var stateEl = document.getElementById("state");
  var transcript = document.getElementById("transcript");
  var typedEl = document.getElementById("typed");
  var speaker = document.getElementById("speaker");
  var hangupButton = document.getElementById("hangup");
  var keys = Array.prototype.slice.call(document.querySelectorAll("#keypad .key"));
  var call = null;  // {sid, gather, typed, timer}

  function setState(text) { stateEl.textContent = text; }

  function line(who, text) {
    var li = document.createElement("li");
    li.className = who;
    li.textContent = text;
    transcript.appendChild(li);
    li.scrollIntoView({ block: "nearest" });
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body),
      credentials: "same-origin"
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) throw new Error(data.error || data.message || response.statusText);
        return data;
      });
    });
  }

  function playAudio(url) {
    return new Promise(function (resolve) {
      speaker.src = url;
      speaker.onended = resolve;
      speaker.onerror = resolve;
      var started = speaker.play();
      if (started && started.catch) started.catch(resolve);  // autoplay refused: go on
    });
  }

  function speak(step) {
    if (step.kind === "say") {
      line("bot", step.text);
      return step.audio ? playAudio(step.audio) : Promise.resolve();
    }
    if (step.kind === "play") {
      line("bot", "♪ " + step.url);
      return playAudio(step.url);
    }
    return Promise.resolve();
  }

  function enableKeys(on) { keys.forEach(function (k) { k.disabled = !on; }); }

  function run(steps) {
    var chain = Promise.resolve();
    var finished = false;
    steps.forEach(function (step) {
      chain = chain.then(function () {
        if (finished || !call) return;
        if (step.kind === "say" || step.kind === "play") return speak(step);
        if (step.kind === "gather") { finished = true; return gather(step); }
        if (step.kind === "record") {
          line("bot", "(recording — the sandbox records silence)");
          finished = true;
          return send(step.params.action, "");
        }
        if (step.kind === "pause") {
          return new Promise(function (r) { setTimeout(r, step.params.seconds * 1000); });
        }
        if (step.kind === "redirect") { finished = true; return send(step.url, ""); }
        if (step.kind === "dial") { line("bot", "(transferring the call to " + step.text + ")"); }
        if (step.kind === "hangup") {
          finished = true;
          var sid = call.sid;
          end(step.params && step.params.rejected ? "Rejected (missed call): the flow will write to you" : "The flow hung up");
          post("/sandbox/phone/hangup", { sid: sid });  // as Twilio's "completed" status callback would
        }
      });
    });
    return chain.then(function () { if (!finished && call) end("The call ended"); });
  }

  function gather(step) {
    call.gather = step.params;
    call.typed = "";
    typedEl.textContent = "";
    enableKeys(true);
    setState("Listening… press keys");
    var prompts = Promise.resolve();
    step.prompts.forEach(function (p) { prompts = prompts.then(function () { return call && call.gather ? speak(p) : null; }); });
    return prompts.then(function () { if (call && call.gather) armTimeout(); });
  }

  function armTimeout() {
    clearTimeout(call.timer);
    call.timer = setTimeout(function () { submitKeys(); }, call.gather.timeout_s * 1000);
  }

  function submitKeys() {
    if (!call || !call.gather) return;
    var action = call.gather.action, digits = call.typed;
    clearTimeout(call.timer);
    call.gather = null;
    enableKeys(false);
    if (digits) line("voter", "pressed " + digits); else line("voter", "(silence)");
    send(action, digits);
  }

  function send(action, digits) {
    setState("…");
    return post("/sandbox/phone/step", { sid: call.sid, action: action, digits: digits })
      .then(function (data) { setState("In call"); return run(data.steps); })
      .catch(function (err) { end("Error: " + err.message); });
  }

  keys.forEach(function (key) {
    key.addEventListener("click", function () {
      if (!call || !call.gather) return;
      var k = key.getAttribute("data-key");
      if (k === call.gather.finish_on_key) { submitKeys(); return; }
      call.typed += k;
      typedEl.textContent = call.typed;
      if (call.gather.num_digits && call.typed.length >= call.gather.num_digits) submitKeys();
      else armTimeout();
    });
  });

  function end(reason) {
    if (call) clearTimeout(call.timer);
    call = null;
    enableKeys(false);
    hangupButton.disabled = true;
    setState(reason);
    line("event", reason);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    transcript.innerHTML = "";
    var data = new FormData(form);
    setState("Calling…");
    post("/sandbox/phone/call", { phone: data.get("phone"), line: data.get("line") })
      .then(function (answer) {
        call = { sid: answer.sid, gather: null, typed: "", timer: null };
        hangupButton.disabled = false;
        setState("In call");
        return run(answer.steps);
      })
      .catch(function (err) { end("Error: " + err.message); });
  });

  // Campaign calls placed by the sandbox ring here: answer or decline them.
  var ringing = document.getElementById("ringing");
  function pollRinging() {
    var phone = new FormData(form).get("phone");
    if (call || !phone) { ringing.innerHTML = ""; return; }
    fetch("/sandbox/phone/ringing?phone=" + encodeURIComponent(phone), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        ringing.innerHTML = "";
        (data.calls || []).forEach(function (ring) {
          var li = document.createElement("li");
          li.textContent = "Incoming call from " + ring.from + (ring.campaign ? " · " + ring.campaign : "") + " ";
          var answer = document.createElement("button");
          answer.type = "button";
          answer.textContent = "Answer";
          answer.addEventListener("click", function () { pickUp(ring); });
          var decline = document.createElement("button");
          decline.type = "button";
          decline.className = "secondary";
          decline.textContent = "Decline";
          decline.addEventListener("click", function () {
            post("/sandbox/phone/decline", { call: ring.call }).then(pollRinging);
          });
          li.appendChild(answer);
          li.appendChild(decline);
          ringing.appendChild(li);
        });
      })
      .catch(function () { /* the next poll tries again */ });
  }
  function pickUp(ring) {
    transcript.innerHTML = "";
    ringing.innerHTML = "";
    setState("Answering…");
    post("/sandbox/phone/answer", { call: ring.call })
      .then(function (answer) {
        call = { sid: answer.sid, gather: null, typed: "", timer: null };
        hangupButton.disabled = false;
        setState("In call with " + ring.from);
        return run(answer.steps);
      })
      .catch(function (err) { end("Error: " + err.message); });
  }
  if (ringing) { pollRinging(); setInterval(pollRinging, 2000); }

  hangupButton.addEventListener("click", function () {
    if (!call) return;
    var sid = call.sid;
    speaker.pause();
    end("You hung up");
    post("/sandbox/phone/hangup", { sid: sid });
  });
})();
