// The SMS segment counter, the same as campaigns/sms_segments.py: the same alphabet, the
// same limits (GSM-7 160 / 153, UCS-2 70 / 67), and the same packing of characters into
// parts, an escape pair or a surrogate pair never cut between two. A test runs both on a
// shared table of texts in Chromium (tests/web/test_templates_browser.py).
(function (root) {
  "use strict";

  var GSM7_BASIC = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  var GSM7_EXTENSION = "\f^{}\\[~]|€";
  var LIMITS = { "GSM-7": [160, 153], "UCS-2": [70, 67] };
  // A well-formed placeholder, as campaigns/placeholders.py recognises one.
  var PLACEHOLDER = /\{\{([1-9][0-9]*)\}\}/g;

  function isGsm7(ch) {
    return GSM7_BASIC.indexOf(ch) >= 0 || GSM7_EXTENSION.indexOf(ch) >= 0;
  }

  // Characters as Python sees them: code points (a surrogate pair is one character).
  function characters(text) {
    return Array.from(text);
  }

  function encoding(text) {
    return characters(text).every(isGsm7) ? "GSM-7" : "UCS-2";
  }

  function width(ch, chosen) {
    if (chosen === "GSM-7") return GSM7_EXTENSION.indexOf(ch) >= 0 ? 2 : 1;
    return ch.codePointAt(0) > 0xffff ? 2 : 1;
  }

  // What a text costs as SMS: {encoding, units, segments, per_segment, remaining}.
  function count(text) {
    var chars = characters(text);
    var chosen = chars.every(isGsm7) ? "GSM-7" : "UCS-2";
    var widths = chars.map(function (ch) { return width(ch, chosen); });
    var units = widths.reduce(function (a, b) { return a + b; }, 0);
    var single = LIMITS[chosen][0];
    var perPart = LIMITS[chosen][1];
    if (units <= single) {
      return { encoding: chosen, units: units, segments: units ? 1 : 0, per_segment: single, remaining: single - units };
    }
    var parts = 1;
    var used = 0;
    widths.forEach(function (w) {
      if (used + w > perPart) {
        parts += 1;
        used = 0;
      }
      used += w;
    });
    return { encoding: chosen, units: units, segments: parts, per_segment: perPart, remaining: perPart - used };
  }

  // The body with each placeholder filled by its sample, 10 characters where there is none
  // (campaigns.templates.sample_text).
  function fill(body, samples) {
    return body.replace(PLACEHOLDER, function (whole, number) {
      return samples[number] || "xxxxxxxxxx";
    });
  }

  // The counter's words, as the server writes them (web/templates/console/_templates.html).
  function describe(c) {
    return c.segments + " SMS segment" + (c.segments === 1 ? "" : "s") + " · " + c.encoding + " · " +
      c.units + " characters, " + c.remaining + " left in this segment";
  }

  root.CanvassSms = {
    GSM7_BASIC: GSM7_BASIC,
    GSM7_EXTENSION: GSM7_EXTENSION,
    LIMITS: LIMITS,
    PLACEHOLDER: PLACEHOLDER,
    count: count,
    encoding: encoding,
    fill: fill,
    describe: describe,
  };
})(window);
