/*
 * fairslot proof-of-work solver for ALTCHA v1 challenges (SHA-256), served by the app
 * itself so that no page depends on a third-party CDN.
 *
 * A challenge is {algorithm, challenge, maxNumber, salt, signature}. The solver finds the
 * number n (0 <= n <= maxNumber) with SHA-256(salt + n) == challenge and answers with the
 * base64 JSON payload {algorithm, challenge, number, salt, signature}, which the server
 * checks (and accepts once).
 *
 * Use:
 *   FairslotPow.solve(challenge, {onProgress(fraction), signal}) -> Promise<string payload>
 *   FairslotPow.fetch(url, init) -> fetch that, when refused with problem code
 *       "challenge_required", solves the challenge in the answer and retries once with
 *       the X-Fairslot-Pow header.
 *   <form data-fairslot-pow data-challenge='{...}'> gets a hidden "altcha" field filled in
 *       before it is submitted.
 */
(function (global) {
  "use strict";

  var BATCH = 256; // digests in flight at once: hides WebCrypto's per-call latency

  function hex(buffer) {
    var bytes = new Uint8Array(buffer);
    var out = "";
    for (var i = 0; i < bytes.length; i++) {
      out += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
    }
    return out;
  }

  function encodePayload(challenge, number) {
    var json = JSON.stringify({
      algorithm: challenge.algorithm,
      challenge: challenge.challenge,
      number: number,
      salt: challenge.salt,
      signature: challenge.signature,
    });
    // The payload is ASCII (hex, digits and the salt's URL-encoded parameters).
    return global.btoa(json);
  }

  async function solve(challenge, options) {
    if (!challenge || challenge.algorithm !== "SHA-256") {
      throw new Error("unsupported challenge");
    }
    var subtle = global.crypto && global.crypto.subtle;
    if (!subtle) {
      throw new Error("WebCrypto is not available (the page must be served over HTTPS)");
    }
    var signal = options && options.signal;
    var onProgress = options && options.onProgress;
    var encoder = new TextEncoder();
    var target = String(challenge.challenge).toLowerCase();
    var max = Number(challenge.maxNumber);
    for (var start = 0; start <= max; start += BATCH) {
      if (signal && signal.aborted) {
        throw new Error("aborted");
      }
      var end = Math.min(start + BATCH - 1, max);
      var pending = [];
      for (var n = start; n <= end; n++) {
        pending.push(subtle.digest("SHA-256", encoder.encode(challenge.salt + n)));
      }
      var digests = await Promise.all(pending);
      if (onProgress) {
        onProgress(max > 0 ? end / max : 1);
      }
      for (var k = 0; k < digests.length; k++) {
        if (hex(digests[k]) === target) {
          return encodePayload(challenge, start + k);
        }
      }
    }
    throw new Error("no solution found");
  }

  async function guardedFetch(url, init) {
    var response = await global.fetch(url, init);
    if (response.status !== 403) {
      return response;
    }
    var type = response.headers.get("content-type") || "";
    if (type.indexOf("application/problem+json") !== 0) {
      return response;
    }
    var problem = await response.clone().json();
    if (problem.code !== "challenge_required" || !problem.challenge) {
      return response;
    }
    var payload = await solve(problem.challenge);
    var retry = Object.assign({}, init || {});
    var headers = new Headers((init && init.headers) || {});
    headers.set("X-Fairslot-Pow", payload);
    retry.headers = headers;
    return global.fetch(url, retry);
  }

  function wireForms(root) {
    var forms = (root || global.document).querySelectorAll("form[data-fairslot-pow]");
    Array.prototype.forEach.call(forms, function (form) {
      form.addEventListener("submit", async function (event) {
        if (form.dataset.fairslotSolved === "1") {
          return;
        }
        event.preventDefault();
        var button = form.querySelector("[type=submit]");
        if (button) {
          button.disabled = true;
        }
        try {
          // Progress shows on the page's note ("checking this device…"): the share of
          // the search space tried so far, an upper bound on the time still needed.
          var bar = global.document.querySelector("[data-fairslot-pow-bar]");
          var label = global.document.querySelector("[data-fairslot-pow-progress]");
          var payload = await solve(JSON.parse(form.dataset.challenge), {
            onProgress: function (fraction) {
              var percent = Math.min(100, Math.round(fraction * 100));
              if (bar) { bar.value = percent; }
              if (label) { label.textContent = percent + "%"; }
            },
          });
          if (bar) { bar.value = 100; }
          var field = form.querySelector("input[name=altcha]");
          if (!field) {
            field = global.document.createElement("input");
            field.type = "hidden";
            field.name = "altcha";
            form.appendChild(field);
          }
          field.value = payload;
          form.dataset.fairslotSolved = "1";
          form.submit();
        } catch (error) {
          if (button) {
            button.disabled = false;
          }
          form.dispatchEvent(new CustomEvent("fairslot-pow-error", { detail: error }));
        }
      });
    });
  }

  global.FairslotPow = { solve: solve, fetch: guardedFetch, wireForms: wireForms };
  if (global.document) {
    if (global.document.readyState === "loading") {
      global.document.addEventListener("DOMContentLoaded", function () { wireForms(); });
    } else {
      wireForms();
    }
  }
})(typeof window !== "undefined" ? window : globalThis);
