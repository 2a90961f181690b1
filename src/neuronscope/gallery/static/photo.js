/* The interactive Building Blocks interface of a photo page (plain JavaScript, no build step).
   Reads window.neuronscopePhoto (the photo's interactive.js) and window.neuronscopeUnits (which
   units have a page, inline in the page); works opened as a plain file and through a server. */
(function () {
  "use strict";
  var data = window.neuronscopePhoto, known = window.neuronscopeUnits;
  var root = document.getElementById("explore");
  if (!data || !known || !root) { return; }
  var rendered = {}; known.rendered.forEach(function (u) { rendered[u] = true; });
  var state = { layer: 0, position: null, cls: 0, pinned: false };
  var img = root.querySelector(".stage img"), canvas = root.querySelector(".stage canvas");
  var ctx = canvas.getContext("2d");

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { node.textContent = attrs[k]; } else { node.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { if (c) { node.appendChild(c); } });
    return node;
  }
  function signed(v, digits) { return (v >= 0 ? "+" : "\u2212") + Math.abs(v).toFixed(digits); }
  function unitLink(layer, c) {
    var key = layer + ":" + c;
    return rendered[key] ? "../" + layer + "/" + c + ".html" : "../" + layer + "/index.html";
  }
  var icons = {};
  Object.keys(known.icons).forEach(function (layer) {
    known.icons[layer].forEach(function (c) { icons[layer + ":" + c] = true; });
  });
  function hasPicture(key) { return rendered[key] || icons[key]; }
  function picture(layer, c, kind) {
    var key = layer + ":" + c, src = "../" + layer + "/examples/" + c + ".png";
    if (kind === "fv") { src = rendered[key] ? "../" + layer + "/" + c + "/fv_0.png" : known.slug + "/icon_" + c + ".png"; }
    var title = (kind === "fv" ? "feature visualization of " : "strongest dataset example of ") + layer + ":" + c;
    return el("img", { src: src, alt: title, title: title, width: "56", height: "56", "class": kind });
  }

  function effectText(what, changes, box) {
    box = box || root.querySelector(".panel .effect");
    box.innerHTML = "";
    box.appendChild(el("strong", { text: "Ablating " + what + ": " }));
    data.classes.forEach(function (c, i) {
      var v = changes[i];
      box.appendChild(el("span", { "class": v < 0 ? "neg" : "pos", text: c.label + " " + signed(v, 4) + "  " }));
    });
    box.hidden = false;
  }

  function drawStage() {
    var layer = data.layers[state.layer], rows = layer.grid[0], cols = layer.grid[1];
    var w = canvas.width / cols, h = canvas.height / rows, values = layer.attribution[state.cls];
    var peak = Math.max.apply(null, values.map(Math.abs)) || 1;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (state.group) {
      state.group.map.forEach(function (v, p) {
        ctx.fillStyle = "rgba(255, 200, 0," + (0.6 * v).toFixed(3) + ")";
        ctx.fillRect((p % cols) * w, Math.floor(p / cols) * h, w, h);
      });
    } else {
      values.forEach(function (v, p) {
        var a = Math.min(1, Math.abs(v) / peak) * 0.55;
        ctx.fillStyle = v >= 0 ? "rgba(27,127,59," + a.toFixed(3) + ")" : "rgba(179,38,30," + a.toFixed(3) + ")";
        ctx.fillRect((p % cols) * w, Math.floor(p / cols) * h, w, h);
      });
    }
    if (state.position !== null) {
      ctx.strokeStyle = "#fff"; ctx.lineWidth = 2;
      ctx.strokeRect((state.position % cols) * w + 1, Math.floor(state.position / cols) * h + 1, w - 2, h - 2);
      ctx.strokeStyle = "#000"; ctx.lineWidth = 1;
      ctx.strokeRect((state.position % cols) * w, Math.floor(state.position / cols) * h, w, h);
    }
  }

  function drawPanel() {
    var layer = data.layers[state.layer], p = state.position, cols = layer.grid[1];
    root.querySelector(".panel-title").textContent =
      layer.name + " at x=" + (p % cols) + ", y=" + Math.floor(p / cols) + (state.pinned ? " (pinned: click the photo to unpin)" : "");
    root.querySelector(".attribution-head").textContent = "attribution here";
    var classes = root.querySelector(".position-classes");
    classes.innerHTML = "";
    data.classes.forEach(function (c, i) {
      var v = layer.attribution[i][p];
      classes.appendChild(el("tr", {}, [el("td", { text: c.label }),
        el("td", { "class": "num " + (v < 0 ? "neg" : "pos"), text: signed(v, 3) })]));
    });
    var list = root.querySelector(".position-units");
    list.innerHTML = "";
    var top = layer.top[p], values = layer.values[p], strongest = Math.max(Math.abs(values[0]), 1e-9);
    top.forEach(function (c, i) {
      var key = layer.name + ":" + c;
      var bar = el("span", { "class": "bar", style: "--w:" + Math.round(100 * Math.max(0, values[i]) / strongest) + "%" });
      var button = el("button", { type: "button", "class": "ablate", "data-unit": key, text: "ablate" });
      button.addEventListener("click", function () { effectText(key, layer.ablation[String(c)]); });
      var item = el("li", {}, [picture(layer.name, c, "example"), hasPicture(key) ? picture(layer.name, c, "fv") : null,
        el("div", {}, [el("a", { href: unitLink(layer.name, c), text: key }), el("br"),
          el("span", { "class": "num", text: values[i].toFixed(2) + " " }), bar, el("br"), button])]);
      list.appendChild(item);
    });
  }

  function drawGroupPanel(layer, g, i) {
    root.querySelector(".panel-title").textContent =
      "group " + i + " of " + layer + ": where it is active (yellow); hover the photo for positions";
    root.querySelector(".attribution-head").textContent = "the group's attribution";
    var classes = root.querySelector(".position-classes");
    classes.innerHTML = "";
    data.classes.forEach(function (c, k) {
      classes.appendChild(el("tr", {}, [el("td", { text: c.label }),
        el("td", { "class": "num " + (g.attribution[k] < 0 ? "neg" : "pos"), text: signed(g.attribution[k], 3) })]));
    });
    var list = root.querySelector(".position-units");
    list.innerHTML = "";
    g.channels.forEach(function (c) {
      var key = layer + ":" + c;
      list.appendChild(el("li", {}, [picture(layer, c, "example"), hasPicture(key) ? picture(layer, c, "fv") : null,
        el("div", {}, [el("a", { href: unitLink(layer, c), text: key }), el("br"),
          el("span", { "class": "muted", text: "among the group's strongest channels" })])]));
    });
  }

  function strongestPosition(layer) {
    var values = layer.attribution[state.cls], best = 0;
    values.forEach(function (v, p) { if (v > values[best]) { best = p; } });
    return best;
  }

  function pressLayer(i) {
    root.querySelectorAll(".layers button").forEach(function (b, j) { b.setAttribute("aria-pressed", String(j === i)); });
  }
  function chooseLayer(i) {
    state.layer = i; state.group = null;
    state.position = strongestPosition(data.layers[i]); state.pinned = false;
    pressLayer(i); drawStage(); drawPanel();
  }

  function positionAt(event) {
    var layer = data.layers[state.layer], box = canvas.getBoundingClientRect();
    var col = Math.floor((event.clientX - box.left) / box.width * layer.grid[1]);
    var row = Math.floor((event.clientY - box.top) / box.height * layer.grid[0]);
    col = Math.max(0, Math.min(layer.grid[1] - 1, col)); row = Math.max(0, Math.min(layer.grid[0] - 1, row));
    return row * layer.grid[1] + col;
  }

  var picker = root.querySelector(".layers");
  data.layers.forEach(function (layer, i) {
    var b = el("button", { type: "button", "aria-pressed": "false",
      text: layer.name + " (" + layer.grid[1] + "\u00d7" + layer.grid[0] + ")" });
    b.addEventListener("click", function () { chooseLayer(i); });
    picker.appendChild(b);
  });
  var classPicker = root.querySelector(".heat-classes");
  data.classes.forEach(function (c, i) {
    var b = el("button", { type: "button", "aria-pressed": String(i === 0), text: c.label });
    b.addEventListener("click", function () {
      state.cls = i; state.group = null;
      classPicker.querySelectorAll("button").forEach(function (x, j) { x.setAttribute("aria-pressed", String(j === i)); });
      drawStage(); drawPanel();
    });
    classPicker.appendChild(b);
  });
  canvas.addEventListener("mousemove", function (event) {
    if (state.pinned) { return; }
    state.position = positionAt(event); state.group = null; drawStage(); drawPanel();
  });
  canvas.addEventListener("click", function (event) {
    state.pinned = !state.pinned; state.position = positionAt(event); drawStage(); drawPanel();
  });

  function groupCards() {
    var holder = root.querySelector(".groups");
    if (!data.groups) { holder.hidden = true; return; }
    data.groups.sets.forEach(function (set, s) {
      var layerIndex = data.layers.map(function (l) { return l.name; }).indexOf(set.layer);
      holder.appendChild(el("h3", { text: "Neuron groups of " + set.layer }));
      var row = el("div", { "class": "row group-row" });
      set.items.forEach(function (g, i) {
        var shares = el("table", { "class": "shares" });
        data.classes.forEach(function (c, k) {
          shares.appendChild(el("tr", {}, [el("td", { text: c.label }),
            el("td", { "class": "num " + (g.attribution[k] < 0 ? "neg" : "pos"), text: signed(g.attribution[k], 2) })]));
        });
        var thumbs = el("div", { "class": "thumbs" });
        g.channels.forEach(function (c) {
          thumbs.appendChild(el("a", { href: unitLink(set.layer, c), title: set.layer + ":" + c }, [picture(set.layer, c, "example")]));
        });
        var button = el("button", { type: "button", "class": "ablate", "data-group": s + ":" + i, text: "remove group" });
        var effect = el("p", { "class": "effect", hidden: "" });
        button.addEventListener("click", function () { effectText("group " + i, g.ablation, effect); });
        var card = el("figure", { "class": "group", tabindex: "0" }, [
          el("img", { src: known.slug + "/" + g.picture, alt: "feature visualization of group " + i + " of " + set.layer,
            width: "96", height: "96" }),
          el("figcaption", { text: "group " + i + " \u00b7 attribution:" }), shares, thumbs, button, effect]);
        function show() {
          state.layer = layerIndex; state.group = g; state.position = null; state.pinned = false;
          pressLayer(layerIndex); drawStage(); drawGroupPanel(set.layer, g, i);
        }
        card.addEventListener("mouseenter", show); card.addEventListener("focus", show);
        row.appendChild(card);
      });
      holder.appendChild(row);
    });
    if (data.groups.links) {
      var first = data.groups.sets[0], second = data.groups.sets[1];
      var table = el("table", { "class": "links" });
      var head = el("tr", {}, [el("th", { text: second.layer + " \u2190 " + first.layer })]);
      first.items.forEach(function (g, i) { head.appendChild(el("th", { "class": "num", text: "group " + i })); });
      table.appendChild(head);
      data.groups.links.forEach(function (row, j) {
        var total = row.reduce(function (a, v) { return a + Math.abs(v); }, 0) || 1;
        var tr = el("tr", {}, [el("td", { text: "group " + j })]);
        row.forEach(function (v) { tr.appendChild(el("td", { "class": "num " + (v < 0 ? "neg" : "pos"), text: signed(v / total, 2) })); });
        table.appendChild(tr);
      });
      holder.appendChild(el("h3", { text: "How the groups of " + second.layer + " are built from those of " + first.layer }));
      holder.appendChild(el("p", { "class": "muted", text: "Each row: a group's attribution to the earlier groups, as a share of its total." }));
      holder.appendChild(table);
    }
  }

  groupCards();
  chooseLayer(data.layers.length - 1);
})();
