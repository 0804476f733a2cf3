// The inspector's only script: the live tail. It puts each event's fields
// into the page as text (textContent), never as markup.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
	var table = document.getElementById("tail");
	if (!table) {
		return;
	}
	var body = table.tBodies[0];
	var state = document.getElementById("tail-state");
	var max = 500;
	var src = new EventSource("tail/events");
	src.onopen = function () {
		state.textContent = "following";
		state.className = "ok";
		table.dataset.open = "1";
	};
	src.onerror = function () {
		state.textContent = "disconnected, retrying…";
		state.className = "warn";
	};
	src.addEventListener("failed", function (m) {
		state.textContent = "stopped: " + JSON.parse(m.data);
		state.className = "bad";
		src.close();
	});
	src.onmessage = function (m) {
		var e = JSON.parse(m.data);
		var tr = document.createElement("tr");
		tr.className = "new";
		var cells = [
			link("event?pos=" + e.position, String(e.position)),
			link("stream?id=" + encodeURIComponent(e.stream), e.stream),
			text(String(e.version)),
			text(e.type),
			text(e.recorded_at),
			text(e.preview),
		];
		cells.forEach(function (c) {
			var td = document.createElement("td");
			td.appendChild(c);
			tr.appendChild(td);
		});
		body.insertBefore(tr, body.firstChild);
		while (body.rows.length > max) {
			body.deleteRow(body.rows.length - 1);
		}
	};
	function text(s) {
		return document.createTextNode(s);
	}
	function link(href, s) {
		var a = document.createElement("a");
		a.href = href;
		a.textContent = s;
		return a;
	}
});
