"""The WebSocket hub: each page in its interview's call, presence, relaying WebRTC signaling
and interview events between the pages (the bus carries them between nodes)."""
