// The templates pages, progressively enhanced (each page works without this script):
// the form's live SMS counter, its sample inputs following the body's placeholders and
// its WhatsApp-only parts following the channel; the preview redrawn as values are typed.
(function () {
  "use strict";
  var sms = window.CanvassSms;

  function showCount(output, text) {
    var c = sms.count(text);
    output.textContent = sms.describe(c);
    output.dataset.segments = c.segments;
    output.dataset.encoding = c.encoding;
    output.dataset.units = c.units;
  }

  function numbersIn(body) {
    var seen = {};
    var found = [];
    body.replace(sms.PLACEHOLDER, function (whole, n) {
      if (!seen[n]) { seen[n] = true; found.push(parseInt(n, 10)); }
      return whole;
    });
    return found.sort(function (a, b) { return a - b; });
  }

  // --- The new template / new version form ---------------------------------------------
  var form = document.querySelector("form.template-form");
  if (form) {
    var body = form.querySelector("#body");
    var channel = form.querySelector("#channel");
    var list = form.querySelector("[data-samples]");
    var counter = form.querySelector("output[data-counter-for='body']");
    var kept = {}; // values of sample inputs whose placeholder left the body, in case it comes back

    var samples = function () {
      var values = {};
      list.querySelectorAll("input[data-sample]").forEach(function (input) {
        values[input.dataset.sample] = input.value.trim();
      });
      return values;
    };

    var syncSamples = function () {
      var wanted = numbersIn(body.value);
      var have = {};
      list.querySelectorAll("label").forEach(function (label) {
        var input = label.querySelector("input[data-sample]");
        if (wanted.indexOf(parseInt(input.dataset.sample, 10)) < 0) {
          kept[input.dataset.sample] = input.value;
          label.remove();
        } else {
          have[input.dataset.sample] = label;
        }
      });
      var none = list.querySelector("[data-no-placeholders]");
      if (none) none.hidden = wanted.length > 0;
      var previous = null;
      wanted.forEach(function (n) {
        var label = have[n];
        if (!label) {
          label = document.createElement("label");
          label.append("Sample for ");
          var code = document.createElement("code");
          code.textContent = "{{" + n + "}}";
          label.append(code);
          var input = document.createElement("input");
          input.name = "sample_" + n;
          input.dataset.sample = String(n);
          input.value = kept[n] || "";
          label.append(input);
        }
        // In number order, after the previous one.
        if (previous) previous.after(label); else list.prepend(label);
        previous = label;
      });
    };

    var update = function () {
      syncSamples();
      if (counter) showCount(counter, sms.fill(body.value, samples()));
    };

    var channelChanged = function () {
      var isSms = channel.value === "sms";
      form.dataset.channel = channel.value;
      // Disabled fieldsets are not sent: an SMS has no buttons and no header.
      form.querySelectorAll("[data-whatsapp-only]").forEach(function (el) {
        el.hidden = isSms;
        el.disabled = isSms;
      });
      form.querySelectorAll("[data-sms-only]").forEach(function (el) { el.hidden = !isSms; });
      body.maxLength = parseInt(body.dataset[isSms ? "maxSms" : "maxWhatsapp"], 10);
    };

    body.addEventListener("input", update);
    list.addEventListener("input", function () { if (counter) showCount(counter, sms.fill(body.value, samples())); });
    channel.addEventListener("change", channelChanged);
    channelChanged();
    update();
  }

  // --- The preview on a template's page ---------------------------------------------------
  var preview = document.getElementById("preview");
  if (preview) {
    var template = preview.dataset.body;
    var text = preview.querySelector("[data-preview-text]");
    var problem = preview.querySelector("[data-preview-problem]");
    var previewCounter = preview.querySelector("output.sms-counter");
    var inputs = preview.querySelectorAll("input[data-placeholder]");
    var button = preview.querySelector("[data-preview-button]");
    if (button) button.hidden = true; // the preview follows the typing

    var redraw = function () {
      var values = {};
      inputs.forEach(function (input) { values[input.dataset.placeholder] = input.value.trim(); });
      text.textContent = "";
      var at = 0;
      var missing = null;
      template.replace(sms.PLACEHOLDER, function (whole, n, offset) {
        if (offset > at) text.append(template.slice(at, offset));
        var mark = document.createElement("mark");
        if (values[n]) {
          mark.className = "value";
          mark.textContent = values[n];
        } else {
          mark.className = "missing";
          mark.textContent = whole;
          if (missing === null) missing = n;
        }
        text.append(mark);
        at = offset + whole.length;
        return whole;
      });
      if (at < template.length) text.append(template.slice(at));
      problem.hidden = missing === null;
      problem.textContent = missing === null ? "" : "{{" + missing + "}} has no value: a voter would never get this message.";
      if (previewCounter) showCount(previewCounter, sms.fill(template, values));
    };
    inputs.forEach(function (input) { input.addEventListener("input", redraw); });
  }
})();
