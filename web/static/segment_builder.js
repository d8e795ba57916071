// The segment builder (console/_segment_builder.html), progressively enhanced: rows and
// groups are added and removed in place, only the inputs a row's kind uses are shown,
// and the count and preview follow the edits (debounced; /segments/count reads the same
// fields the form posts, so the server alone turns them into a segment). Without this
// script the form still works: its Count and "+ group" buttons submit it.
(function () {
  "use strict";

  var fmt = new Intl.NumberFormat("en");
  var WAIT_MS = 350;

  function setUp(builder) {
    var url = builder.getAttribute("data-count-url");
    var timer = null;
    var inFlight = null;
    builder.classList.add("live");
    builder.querySelectorAll("[data-remove-row], [data-add-row]").forEach(function (b) { b.hidden = false; });

    function renumber() {
      builder.querySelectorAll("[data-group]").forEach(function (group, gi) {
        group.querySelector("[data-group-label]").textContent = "Group " + (gi + 1);
        group.querySelector("select[name='group_mode']").setAttribute("aria-label", "Group " + (gi + 1) + " matches");
        group.querySelectorAll("[data-row]").forEach(function (row, ri) {
          var where = "Group " + (gi + 1) + ", row " + (ri + 1);
          row.querySelector("input[name='row_group']").value = String(gi);
          row.querySelectorAll("[data-part]").forEach(function (el) {
            var label = el.getAttribute("aria-label");
            el.setAttribute("aria-label", where + label.slice(label.indexOf(":")));
          });
          row.querySelector("[data-remove-row]").setAttribute("aria-label", "Remove " + where.toLowerCase());
        });
      });
    }

    function clearRow(row) {
      row.querySelector("[name='row_not']").value = "";
      row.querySelector("[name='row_kind']").value = "tag";
      row.querySelector("[name='row_name']").value = "";
      row.querySelector("[name='row_op']").value = "eq";
      row.querySelector("[name='row_value']").value = "";
      row.querySelector("[name='row_consent']").selectedIndex = 0;
      row.setAttribute("data-kind", "tag");
      row.removeAttribute("aria-invalid");
      return row;
    }

    function addRow(group) {
      var rows = group.querySelector("[data-rows]");
      var row = clearRow(builder.querySelector("[data-row]").cloneNode(true));
      rows.appendChild(row);
      renumber();
      row.querySelector("[name='row_name']").focus();
    }

    function addGroup() {
      var groups = builder.querySelector("[data-groups]");
      var group = builder.querySelector("[data-group]").cloneNode(true);
      var rows = group.querySelectorAll("[data-row]");
      for (var i = 1; i < rows.length; i++) rows[i].remove();
      clearRow(rows[0]);
      group.querySelector("select[name='group_mode']").value = "all";
      groups.appendChild(group);
      renumber();
      rows[0].querySelector("[name='row_kind']").focus();
    }

    function removeRow(row) {
      var group = row.closest("[data-group]");
      row.remove();
      if (!group.querySelector("[data-row]")) {
        if (builder.querySelectorAll("[data-group]").length > 1) group.remove();
        else addRow(group);
      }
      renumber();
      schedule();
    }

    // Only the builder's own fields: a page embedding it may have others in the form.
    function query() {
      var params = new URLSearchParams();
      builder.querySelectorAll("input[name], select[name], textarea[name]").forEach(function (el) {
        params.append(el.name, el.value);
      });
      return params.toString();
    }

    function text(selector, value) {
      var el = builder.querySelector(selector);
      if (el) el.textContent = value;
    }

    function showPreview(contacts) {
      var table = builder.querySelector("[data-preview]");
      var body = table.querySelector("tbody");
      body.textContent = "";
      contacts.forEach(function (c) {
        var tr = document.createElement("tr");
        var phone = document.createElement("td");
        phone.className = "mono";
        var link = document.createElement("a");
        link.href = "/contacts/" + c.id;
        link.textContent = c.phone;
        phone.appendChild(link);
        var name = document.createElement("td");
        name.textContent = c.name || "";
        var tags = document.createElement("td");
        c.tags.forEach(function (t) {
          var span = document.createElement("span");
          span.className = "tag";
          span.textContent = t;
          tags.appendChild(span);
          tags.appendChild(document.createTextNode(" "));
        });
        tr.append(phone, name, tags);
        body.appendChild(tr);
      });
      table.hidden = contacts.length === 0;
    }

    function count() {
      if (inFlight) inFlight.abort();
      var controller = new AbortController();
      inFlight = controller;
      var busy = builder.querySelector("[data-busy]");
      busy.hidden = false;
      fetch(url + "?" + query(), { headers: { Accept: "application/json" }, credentials: "same-origin", signal: controller.signal })
        .then(function (response) {
          return response.json().then(function (data) { return { ok: response.ok, data: data }; });
        })
        .then(function (answer) {
          if (controller !== inFlight) return;
          busy.hidden = true;
          var error = builder.querySelector("[data-error]");
          builder.setAttribute("data-counted", answer.ok ? "yes" : "error");
          markRow(answer.ok ? null : answer.data.field);
          if (!answer.ok) {
            text("[data-count]", "—");
            text("[data-description]", "");
            error.textContent = answer.data.message || "The segment cannot be counted.";
            error.hidden = false;
            showPreview([]);
            return;
          }
          error.hidden = true;
          text("[data-count]", fmt.format(answer.data.count));
          text("[data-description]", answer.data.description);
          showPreview(answer.data.preview);
          var spec = document.querySelector("[data-spec]");
          if (spec) spec.textContent = JSON.stringify(answer.data.spec, null, 2);
        })
        .catch(function (err) {
          if (err.name === "AbortError") return;
          busy.hidden = true;
          text("[data-count]", "—");
        });
    }

    // The row a mistake names ("group 1, row 2") is outlined until it is fixed.
    function markRow(field) {
      builder.querySelectorAll("[data-row]").forEach(function (row) { row.removeAttribute("aria-invalid"); });
      var found = /^group (\d+), row (\d+)$/.exec(field || "");
      if (!found) return;
      var group = builder.querySelectorAll("[data-group]")[Number(found[1]) - 1];
      var row = group && group.querySelectorAll("[data-row]")[Number(found[2]) - 1];
      if (row) row.setAttribute("aria-invalid", "true");
    }

    function schedule() {
      window.clearTimeout(timer);
      timer = window.setTimeout(count, WAIT_MS);
    }

    builder.addEventListener("input", schedule);
    builder.addEventListener("change", function (event) {
      if (event.target.name === "row_kind") event.target.closest("[data-row]").setAttribute("data-kind", event.target.value);
      schedule();
    });
    builder.addEventListener("click", function (event) {
      var target = event.target.closest("button");
      if (!target || !builder.contains(target)) return;
      if (target.hasAttribute("data-add-row")) addRow(target.closest("[data-group]"));
      else if (target.hasAttribute("data-remove-row")) removeRow(target.closest("[data-row]"));
      else if (target.hasAttribute("data-add-group")) { event.preventDefault(); addGroup(); }
    });
  }

  document.querySelectorAll("[data-segment-builder]").forEach(setUp);
  // Confirm before deleting a saved segment (the server does not depend on it).
  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (event) {
      if (!window.confirm(f.getAttribute("data-confirm"))) event.preventDefault();
    });
  });
})();
