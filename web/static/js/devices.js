import { t } from "./i18n.js";
// Camera and microphone: open them, list them, measure the microphone level, explain failures.

export function explainMediaError(error) {
  switch (error && error.name) {
    case "NotAllowedError":
    case "SecurityError":
      return t("The browser blocked the camera and microphone. Allow them for this site (the camera icon in the address bar), then click Try again.");
    case "NotFoundError":
    case "OverconstrainedError":
      return t("No camera or microphone was found. Connect one, then click Try again.");
    case "NotReadableError":
    case "AbortError":
      return t("The camera or microphone is in use by another app. Close it, then click Try again.");
    default:
      if (!navigator.mediaDevices) {
        return t("This page needs a secure connection (https) and a current browser to use the camera and microphone.");
      }
      return t("The camera or microphone could not be opened ({error}).", { error: (error && error.message) || error });
  }
}

export async function openMedia({ cameraId, microphoneId } = {}) {
  const audio = {
    deviceId: microphoneId ? { exact: microphoneId } : undefined,
    echoCancellation: true,
    noiseSuppression: true,
    autoGainControl: true,
  };
  const video = cameraId ? { deviceId: { exact: cameraId } } : true;
  try {
    return await navigator.mediaDevices.getUserMedia({ audio, video });
  } catch (error) {
    // No camera is acceptable: the interview can go on with the microphone alone.
    if (error.name === "NotFoundError" || error.name === "OverconstrainedError") {
      const stream = await navigator.mediaDevices.getUserMedia({ audio, video: false });
      stream.noCamera = true;
      return stream;
    }
    throw error;
  }
}

export async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  return {
    cameras: devices.filter((d) => d.kind === "videoinput"),
    microphones: devices.filter((d) => d.kind === "audioinput"),
  };
}

export function fillSelect(select, devices, currentId, noun) {
  select.replaceChildren();
  devices.forEach((device, index) => {
    const option = document.createElement("option");
    option.value = device.deviceId;
    option.textContent = device.label || `${noun} ${index + 1}`;
    option.selected = device.deviceId === currentId;
    select.append(option);
  });
  if (!devices.length) {
    const option = document.createElement("option");
    option.textContent = noun === "Camera" ? t("No camera found") : t("No microphone found");
    select.append(option);
  }
  select.disabled = devices.length === 0;
}

// Calls onLevel(0..1) about 20 times a second with the microphone's RMS level.
export function meterLevel(stream, onLevel) {
  const context = new AudioContext();
  const source = context.createMediaStreamSource(stream);
  const analyser = context.createAnalyser();
  analyser.fftSize = 1024;
  source.connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  const timer = setInterval(() => {
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const s of samples) sum += s * s;
    onLevel(Math.min(1, Math.sqrt(sum / samples.length) * 4));
  }, 50);
  if (context.state === "suspended") context.resume().catch(() => {});
  return () => {
    clearInterval(timer);
    context.close();
  };
}
