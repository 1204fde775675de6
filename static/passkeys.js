// Passkey ceremonies (WebAuthn) on the sign-in page, the second step of a sign-in and
// /account/security. The server keeps each ceremony's state; this script carries its options to
// navigator.credentials and the authenticator's answer back, turning binary fields into
// base64url and back. Without it, the pages say that passkeys need JavaScript.
(function () {
  "use strict";

  var nojs = document.querySelectorAll("[data-passkey-nojs]");
  if (!window.PublicKeyCredential || !navigator.credentials) {
    nojs.forEach(function (el) { el.textContent = "This browser cannot use passkeys."; });
    return;
  }
  nojs.forEach(function (el) { el.hidden = true; });

  function fromB64url(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) { b64 += "="; }
    var raw = atob(b64);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
    return bytes.buffer;
  }

  function toB64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) { raw += String.fromCharCode(bytes[i]); }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // POSTs JSON with the page's CSRF token; a refusal throws its message.
  function post(url, token, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": token },
      body: JSON.stringify(body)
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (data) {
        if (!res.ok) {
          throw new Error((data.error && data.error.message) || "Something went wrong. Try again.");
        }
        return data;
      });
    });
  }

  function decodeIds(list) {
    (list || []).forEach(function (c) { c.id = fromB64url(c.id); });
  }

  function creationOptions(options) {
    var pk = options.publicKey;
    pk.challenge = fromB64url(pk.challenge);
    pk.user.id = fromB64url(pk.user.id);
    decodeIds(pk.excludeCredentials);
    return { publicKey: pk };
  }

  function requestOptions(options) {
    var pk = options.publicKey;
    pk.challenge = fromB64url(pk.challenge);
    decodeIds(pk.allowCredentials);
    return { publicKey: pk };
  }

  function registration(cred) {
    return {
      id: cred.id,
      rawId: toB64url(cred.rawId),
      type: cred.type,
      response: {
        attestationObject: toB64url(cred.response.attestationObject),
        clientDataJSON: toB64url(cred.response.clientDataJSON)
      },
      extensions: {}
    };
  }

  function assertion(cred) {
    var r = cred.response;
    return {
      id: cred.id,
      rawId: toB64url(cred.rawId),
      type: cred.type,
      response: {
        authenticatorData: toB64url(r.authenticatorData),
        clientDataJSON: toB64url(r.clientDataJSON),
        signature: toB64url(r.signature),
        userHandle: r.userHandle ? toB64url(r.userHandle) : null
      },
      extensions: {}
    };
  }

  // What to tell the person when the browser's prompt fails.
  function explain(err) {
    if (err && err.name === "NotAllowedError") {
      return "The passkey prompt was closed or timed out. Try again.";
    }
    if (err && err.name === "InvalidStateError") {
      return "This device already holds a passkey for your account.";
    }
    return (err && err.message) || "Something went wrong. Try again.";
  }

  function showError(el, message) {
    if (!el) { return; }
    el.textContent = message;
    el.hidden = false;
  }

  function tokenNear(el) {
    var input = el.querySelector("input[name=csrf_token]") ||
      document.querySelector("input[name=csrf_token]");
    return input ? input.value : "";
  }

  function nextPath() {
    var input = document.querySelector("input[name=next]");
    return input ? input.value : "";
  }

  // A ceremony that asks for an existing passkey: sign-in alone, or the second step.
  function signIn(container, base) {
    var button = container.querySelector("button");
    var error = container.querySelector("[data-passkey-error]");
    container.hidden = false;
    button.addEventListener("click", function () {
      var token = tokenNear(container);
      button.disabled = true;
      if (error) { error.hidden = true; }
      post(base + "/options", token, {}).then(function (started) {
        return navigator.credentials.get(requestOptions(started.options)).then(function (cred) {
          return post(base + "/finish", token, {
            ceremony: started.ceremony, credential: assertion(cred), next: nextPath()
          });
        });
      }).then(function (done) {
        window.location.assign(done.redirect);
      }).catch(function (err) {
        button.disabled = false;
        showError(error, explain(err));
      });
    });
  }

  document.querySelectorAll("[data-passkey-sign-in]").forEach(function (el) {
    signIn(el, "/login/passkey");
  });
  document.querySelectorAll("[data-passkey-second-step]").forEach(function (el) {
    signIn(el, "/login/second-step/passkey");
  });

  var add = document.querySelector("[data-passkey-add]");
  if (add) {
    var error = add.querySelector("[data-passkey-error]");
    var field = add.querySelector("input[name=name]");
    add.hidden = false;
    add.addEventListener("submit", function (event) {
      event.preventDefault();
      var token = tokenNear(add);
      var button = add.querySelector("button[type=submit]");
      button.disabled = true;
      error.hidden = true;
      field.removeAttribute("aria-invalid");
      post("/account/security/passkeys/options", token, { name: field.value })
        .then(function (started) {
          return navigator.credentials.create(creationOptions(started.options))
            .then(function (cred) {
              return post("/account/security/passkeys/finish", token, {
                ceremony: started.ceremony, credential: registration(cred)
              });
            });
        }).then(function (done) {
          window.location.assign(done.redirect);
        }).catch(function (err) {
          button.disabled = false;
          field.setAttribute("aria-invalid", "true");
          showError(error, explain(err));
          field.focus();
        });
    });
  }
})();
