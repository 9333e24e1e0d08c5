// Sends Telegram's initData (from the Mini App's address) to the server, which checks it.
(function () {
  var hash = new URLSearchParams(window.location.hash.slice(1));
  var data = hash.get("tgWebAppData") || "";
  var form = document.getElementById("miniapp");
  var problem = document.getElementById("miniapp-problem");
  if (!data || !form) { if (problem) { problem.hidden = false; } return; }
  var body = new FormData();
  body.append("init_data", data);
  fetch(form.action, { method: "POST", body: body, credentials: "same-origin" })
    .then(function (r) { return r.json().then(function (j) { return [r.ok, j]; }); })
    .then(function (res) { if (res[0] && res[1].next) { window.location.replace(res[1].next); } else { problem.hidden = false; } })
    .catch(function () { problem.hidden = false; });
})();
