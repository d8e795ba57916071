// The campaign wizard, progressively enhanced. Every step works without this script
// (its forms post to the server, which checks and saves them); with it, the sender list
// follows the chosen channel, optional parts show only when chosen, the audience is
// counted as you type, choosing a template shows its variables at once, and launching
// asks first.
(function () {
  "use strict";

  // Parts shown by a radio button: data-shows="id" on the radio.
  var togglers = document.querySelectorAll("input[type=radio][data-shows]");
  togglers.forEach(function (radio) {
    var part = document.getElementById(radio.getAttribute("data-shows"));
    if (!part) return;
    function sync() { part.hidden = !radio.checked; }
    document.querySelectorAll("input[type=radio][name='" + radio.name + "']").forEach(function (other) {
      other.addEventListener("change", sync);
    });
    sync();
  });

  // The sender list shows the senders of the chosen channel only.
  var sender = document.getElementById("sender");
  if (sender) {
    var channels = document.querySelectorAll("input[name=channel]");
    var filter = function () {
      var picked = document.querySelector("input[name=channel]:checked");
      var channel = picked ? picked.value : "";
      sender.querySelectorAll("optgroup").forEach(function (group) {
        var mine = group.getAttribute("data-channel") === channel;
        group.hidden = !mine;
        group.disabled = !mine;
      });
      var chosen = sender.options[sender.selectedIndex];
      if (chosen && chosen.parentNode.tagName === "OPTGROUP" && chosen.parentNode.disabled) {
        var first = sender.querySelector("optgroup:not([disabled]) option:not([disabled])");
        sender.value = first ? first.value : "";
      }
    };
    channels.forEach(function (radio) { radio.addEventListener("change", filter); });
    filter();
  }

  // The audience step: count who is reached while the conditions are typed.
  var audience = document.querySelector("form[data-count-url]");
  if (audience) {
    var out = audience.querySelector("[data-audience-count]");
    var why = audience.querySelector("[data-audience-error]");
    var timer = null;
    var asked = 0;
    var count = function () {
      var mine = ++asked;
      var query = new URLSearchParams();
      ["saved", "include", "exclude", "consent", "advanced"].forEach(function (name) {
        var field = audience.elements[name];
        if (field) query.set(name, field.value);
      });
      var match = audience.querySelector("input[name=match]:checked");
      if (match) query.set("match", match.value);
      fetch(audience.getAttribute("data-count-url") + "?" + query.toString(), { credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (data) {
          if (mine !== asked) return; // an older answer arriving late
          out.textContent = data.count === null ? "—" : data.text;
          why.textContent = data.error ? "fix the conditions to count them" : "";
          showError(data.field || "", data.error || "");
        })
        .catch(function () { why.textContent = "could not count just now"; });
    };
    // The error of the field it is about, under that field (as the server shows it).
    var showError = function (field, message) {
      ["include", "exclude", "advanced"].forEach(function (name) {
        var input = audience.elements[name];
        var id = "err-" + (name === "advanced" ? "audience" : name);
        var mine = name === field || (name === "advanced" && field === "audience");
        var note = document.getElementById(id);
        if (mine && message) {
          if (!note) {
            note = document.createElement("p");
            note.className = "field-error";
            note.id = id;
            input.insertAdjacentElement("afterend", note);
          }
          note.textContent = message;
          input.setAttribute("aria-invalid", "true");
          input.setAttribute("aria-describedby", id);
        } else if (note) {
          note.remove();
          input.removeAttribute("aria-invalid");
          input.removeAttribute("aria-describedby");
        }
      });
    };
    var again = audience.querySelector("[data-count-button]");
    if (again) again.hidden = true; // counted as typed: no need to save to count
    audience.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(count, 300);
    });
    audience.addEventListener("change", function () {
      clearTimeout(timer);
      timer = setTimeout(count, 50);
    });
  }

  // Choosing a template shows its variables at once (the server saves the choice).
  document.querySelectorAll("select[data-autopick]").forEach(function (select) {
    var button = select.form.querySelector("[data-pick-button]");
    if (!button) return;
    button.hidden = true;
    select.addEventListener("change", function () { select.form.requestSubmit(button); });
  });

  // A binding's name or text is not asked for when the value is the contact's own.
  var HINTS = { tag: "ward", field: "booth_no", answer: "booth_locator.epic", text: "the text itself" };
  document.querySelectorAll("select[data-kind]").forEach(function (select) {
    var value = select.closest("tr").querySelector("input[name$='.value']");
    var sync = function () {
      var own = select.value.indexOf("contact:") === 0;
      value.disabled = own;
      value.placeholder = own ? "—" : HINTS[select.value] || "";
    };
    select.addEventListener("change", sync);
    sync();
  });

  // Ask before launching (the server does not depend on it).
  document.querySelectorAll("button[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.getAttribute("data-confirm"))) event.preventDefault();
    });
  });
})();
