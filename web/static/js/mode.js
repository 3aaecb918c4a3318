// Interview mode: show the date fields only for "later" and fill in the browser's time zone.
const form = document.getElementById("mode-form");
const later = document.getElementById("later-fields");
const zone = document.getElementById("time_zone");

function sync() {
  const mode = form.querySelector("input[name=mode]:checked");
  const isLater = mode && mode.value === "later";
  later.classList.toggle("hidden-until-later", !isLater);
  for (const input of later.querySelectorAll("#scheduled_date, #scheduled_time")) {
    input.required = isLater;
  }
}

if (zone.value === "UTC" || !zone.value) {
  try {
    zone.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    /* keep UTC */
  }
}
form.addEventListener("change", sync);
sync();
