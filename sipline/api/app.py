"""The Litestar application: SignalWire's paths, our error shapes, the OpenAPI document."""

from __future__ import annotations

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from sipline import __version__
from sipline.runtime import Runtime
from sipline.store import tokens

from .bodies import MAX_BODY_SIZE
from .deps import principal, runtime
from .errors import EXCEPTION_HANDLERS
from .middleware import add_request_id
from .routes import calls, endpoints, health, metrics, profile, registrations


def create_app(rt: Runtime) -> Litestar:
    """Build the app around a runtime. Every node serves every route: what the routes show (bindings
    included) lives in the database, whether or not this node runs the SIP server."""
    openapi = OpenAPIConfig(
        title="sipline",
        version=__version__,
        description=(
            "SignalWire-compatible SIP Endpoints and SIP Profile API, and the LaML (Twilio-compatible) "
            "Calls resource. Routes tagged 'sipline extensions' are not part of SignalWire's API."
        ),
        path="/schema",
        components=Components(
            security_schemes={
                "SignalWireBasicAuth": SecurityScheme(
                    type="http",
                    scheme="basic",
                    description="HTTP Basic: project id as user, API token as password",
                )
            }
        ),
        security=[{"SignalWireBasicAuth": []}],
    )
    app = Litestar(
        route_handlers=[
            endpoints.router,
            profile.get_profile,
            profile.update_profile,
            health.healthz,
            metrics.scrape,
            registrations.list_registrations,
            calls.router,
        ],
        dependencies={"runtime": Provide(runtime, sync_to_thread=False), "principal": Provide(principal)},
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        before_send=[add_request_id],
        openapi_config=openapi,
        request_max_body_size=MAX_BODY_SIZE,
        state=None,
        debug=False,
        logging_config=None,  # logging is the process's to configure (sipline.logs), not the app's
    )
    app.state.runtime = rt
    app.state.verified_tokens = tokens.VerifiedTokens(rt.db.others_commits)
    return app
