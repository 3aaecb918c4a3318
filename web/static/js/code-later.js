// The shared code editor (CodeMirror and Yjs, about 650 KB: the call pages' largest script) is
// loaded once the other person's video shows, or a moment after the page opened, so that
// parsing it does not hold up the camera, the signaling socket and the call's first frame. A
// stage that needs it meanwhile (a coding question, an open scratch pad) loads it at once; it
// is shown as soon as it is here.
const LOAD_AFTER_MS = 2000;

export class LaterCode {
  // The page's code panel (#code-panel) and scratch pad (#scratch-panel), once loaded;
  // `onScratchChange`: the recruiter's page opens, switches or closes the pad.
  constructor({ signaling, role, name, onScratchChange = null }) {
    this.options = { signaling, role, name, onScratchChange };
    this.panel = null;
    this.scratch = null;
    this.wanted = null;
    this.loading = null;
    setTimeout(() => this.load(), LOAD_AFTER_MS);
  }

  load() {
    this.loading ??= import("./code.js").then(
      ({ CodePanel, ScratchPad }) => {
        const { signaling, role, name, onScratchChange } = this.options;
        this.panel = new CodePanel({ signaling, role, name, root: document.getElementById("code-panel") });
        this.scratch = new ScratchPad({
          panel: this.panel,
          root: document.getElementById("scratch-panel"),
          onChange: onScratchChange,
        });
        window.p2pCode = this.panel;
        window.p2pScratch = this.scratch;
        if (this.wanted) this.show(...this.wanted);
      },
      (error) => {
        this.loading = null; // the next stage that needs it tries again
        console.error("could not load the code editor:", error);
      },
    );
    return this.loading;
  }

  loadAfterFirstFrame(video) {
    if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(() => this.load());
    else video.addEventListener("playing", () => this.load(), { once: true });
  }

  // The stage's question (its `code`, if a coding one) and the scratch pad's language (or null).
  show(question, scratchLanguage, inCall) {
    this.wanted = [question, scratchLanguage, inCall];
    if (this.panel) {
      this.panel.show(question);
      this.scratch.show(scratchLanguage, inCall);
    } else if ((question && question.code) || scratchLanguage) {
      this.load();
    }
  }
}
