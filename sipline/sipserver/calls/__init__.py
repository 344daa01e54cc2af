"""The call engine: a signalling-only B2BUA between registered devices (DESIGN.md, "Calls").

`engine` takes INVITEs and in-dialog requests from the service; `call` bridges a caller's leg to
the legs it dials (`legs`); `routing` finds where an endpoint's devices are; `media` applies each
endpoint's SDP policy; `records` keeps every leg as a Call record.
"""
