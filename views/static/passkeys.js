// Runs the WebAuthn ceremony of a page's passkey form, a file of its own because the pages'
// policy allows no inline script. A form marked data-passkey="register" or "authenticate" carries
// its options in data-passkey-options (JSON the server made, with a single-use challenge); the
// ceremony's result goes into the form's `response` field and the form is posted as any other.
// Without JavaScript or WebAuthn the passkey sections stay hidden and the rest of the page works.
(function () {
  'use strict';
  var webauthn = window.SimpleWebAuthnBrowser;
  if (!webauthn || !webauthn.browserSupportsWebAuthn()) return;

  var MESSAGES = {
    NotAllowedError: 'The passkey request was cancelled or timed out. Try again.',
    InvalidStateError: 'This device holds a passkey of this account already.',
    SecurityError: 'Passkeys need a secure address (https, or localhost).',
  };

  function show(form, message) {
    var status = form.querySelector('[data-passkey-status]');
    if (!status) return;
    status.textContent = message;
    status.hidden = false;
  }

  function run(form) {
    var optionsJSON = JSON.parse(form.getAttribute('data-passkey-options'));
    var ceremony = form.getAttribute('data-passkey') === 'register'
      ? webauthn.startRegistration({ optionsJSON: optionsJSON })
      : webauthn.startAuthentication({ optionsJSON: optionsJSON });
    return ceremony.then(function (result) {
      form.elements.response.value = JSON.stringify(result);
      // HTMLFormElement.submit() fires no submit event: the form goes to the server as it is.
      form.submit();
    });
  }

  function start() {
    var sections = document.querySelectorAll('[data-passkey-section]');
    for (var i = 0; i < sections.length; i += 1) sections[i].hidden = false;
    var forms = document.querySelectorAll('form[data-passkey]');
    for (var j = 0; j < forms.length; j += 1) {
      (function (form) {
        form.addEventListener('submit', function (event) {
          event.preventDefault();
          if (!form.reportValidity()) return;
          var button = form.querySelector('button[type="submit"]');
          if (button) button.disabled = true;
          run(form).catch(function (error) {
            if (button) button.disabled = false;
            show(form, MESSAGES[error && (error.name === 'WebAuthnError' && error.cause ? error.cause.name : error.name)]
              || 'The passkey could not be used. Try again.');
          });
        });
      })(forms[j]);
    }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
