// The judge form (templates/evalapp/judges/form.html); loaded on every page, acting only on #judge-form.
// The variable buttons insert their placeholder at the cursor in the instructions (set up once per page, however often the form is swapped).
if (!window.evalappInsertVariable) {
  window.evalappInsertVariable = true;
  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-insert-variable]");
    if (!button) return;
    event.preventDefault();
    const field = document.getElementById(button.dataset.insertInto);
    if (!field || field.disabled || field.readOnly) return;
    const start = field.selectionStart ?? field.value.length;
    const end = field.selectionEnd ?? start;
    field.setRangeText(button.dataset.insertVariable, start, end, "end");
    field.focus();
    field.dispatchEvent(new Event("input", { bubbles: true }));
  });
}
// What the user typed or picked is never replaced by a refresh of the form. A refresh answers the request as it
// was sent; anything typed or picked since (or while an earlier refresh was on its way back) would be lost in the
// swap. So: text fields the user has typed in are carried over to the new form (the server's suggestion, a
// built-in's default name, only fills a field left empty), and a choice (scope, built-in, output type, model)
// made after the answered request was sent is made again in the new form, which asks for a fresh refresh.
if (!window.evalappKeepTyped) {
  window.evalappKeepTyped = true;
  const TYPED = "#judge-form input[type=text][name], #judge-form input[type=number][name], #judge-form textarea[name]";
  const CHOICES = "#judge-form input[type=radio][name], #judge-form select[name]";
  const picked = {};  // name -> {value, at}
  document.addEventListener("input", function (event) {
    if (event.target.matches && event.target.matches(TYPED)) event.target.dataset.typed = "1";
  });
  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches(CHOICES)) picked[event.target.name] = { value: event.target.value, at: performance.now() };
  });
  document.addEventListener("htmx:beforeRequest", function (event) {
    event.detail.xhr.evalappSentAt = performance.now();
  });
  let carried = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    carried = null;
    if (!event.detail.target || event.detail.target.id !== "judge-form") return;
    const sentAt = event.detail.xhr.evalappSentAt || 0;
    carried = { text: {}, choices: {} };
    document.querySelectorAll(TYPED).forEach(function (field) {
      if (field.dataset.typed && field.value !== "") carried.text[field.name] = field.value;
    });
    Object.keys(picked).forEach(function (name) {
      if (picked[name].at > sentAt) carried.choices[name] = picked[name].value;
    });
  });
  document.addEventListener("htmx:afterSwap", function () {
    if (!carried) return;
    const { text, choices } = carried;
    carried = null;
    document.querySelectorAll(TYPED).forEach(function (field) {
      if (Object.prototype.hasOwnProperty.call(text, field.name)) {
        field.value = text[field.name];
        field.dataset.typed = "1";
      }
    });
    Object.keys(choices).forEach(function (name) {
      const form = document.getElementById("judge-form");
      const radio = form && form.querySelector('input[type=radio][name="' + name + '"][value="' + CSS.escape(choices[name]) + '"]');
      const select = form && form.querySelector('select[name="' + name + '"]');
      let changed = null;
      if (radio && !radio.checked) { radio.checked = true; changed = radio; }
      if (select && select.value !== choices[name]) { select.value = choices[name]; changed = select; }
      if (changed) changed.dispatchEvent(new Event("change", { bubbles: true }));  // the form follows the choice again
    });
  });
}
