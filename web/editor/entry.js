// Everything the pages need from the third-party editor packages, bundled into one ES module
// (web/static/vendor/editor.js) by build.mjs. The project's own JS imports from that file.
export { EditorView, basicSetup } from "codemirror";
export { EditorState, Compartment } from "@codemirror/state";
export { python } from "@codemirror/lang-python";
export { javascript } from "@codemirror/lang-javascript";
export * as Y from "yjs";
export { yCollab } from "y-codemirror.next";
export {
  Awareness,
  applyAwarenessUpdate,
  encodeAwarenessUpdate,
  removeAwarenessStates,
} from "y-protocols/awareness";
