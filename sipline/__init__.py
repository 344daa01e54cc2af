"""sipline: self-hosted SIP endpoints with a SignalWire-compatible provisioning API."""

__version__ = "0.1.0"
