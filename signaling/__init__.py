"""The WebSocket hub: rooms, presence, relaying WebRTC signaling and interview events."""
