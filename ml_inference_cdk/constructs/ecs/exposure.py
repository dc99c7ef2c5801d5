"""Who may reach FargateInferenceService: private by default, and public only with a gate in front.

The load balancer is internal unless the caller opts in with ``internet_facing=True``, and then at least one
gate is required (as for a SageMaker endpoint, which only SigV4 callers that IAM allows can invoke):

- ``allowed_cidrs``: the networks that may connect (anything but ``0.0.0.0/0`` and ``::/0``);
- ``authentication``: an authenticate action on the HTTPS listener (``ListenerAuthentication``): bearer
  tokens from an OIDC provider for programs, or an OIDC or Amazon Cognito sign-in for browsers;
- or no public load balancer at all: ``iam_http_api=True`` puts an API Gateway HTTP API in front of the
  internal one (a VPC link), every route authorized with AWS_IAM, so callers sign with SigV4.

Public plain HTTP (no certificate) is refused unless ``allow_public_http=True`` says so explicitly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from aws_cdk import Duration, SecretValue, Token
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_elasticloadbalancingv2_actions as elbv2_actions

ANYWHERE: Final = ("0.0.0.0/0", "::/0")

_ActionBuilder = Callable[[elbv2.ListenerAction], elbv2.ListenerAction]

CHOICES: Final = (
    "allowed_cidrs=[...] (the networks that may connect), "
    "authentication=ListenerAuthentication.jwt(...)/.oidc(...)/.cognito(...) with a certificate "
    "(an authenticate action on the HTTPS listener), "
    "or internet_facing=False with iam_http_api=True (an API Gateway HTTP API; callers sign with SigV4)"
)


class ListenerAuthentication:
    """An authenticate action in front of the HTTPS listener's forward (ALB authentication, HTTPS only).

    ``jwt`` suits programs: the ALB verifies the ``Authorization: Bearer`` token (an OIDC provider's access
    token) on every request. ``oidc`` and ``cognito`` suit browsers: the ALB signs the user in and keeps a
    session cookie; a request without one is redirected to sign in.
    """

    def __init__(
        self, kind: Literal["jwt", "oidc", "cognito"], build: _ActionBuilder, issuer: str | None = None
    ) -> None:
        self.kind: Literal["jwt", "oidc", "cognito"] = kind
        """``jwt``, ``oidc`` or ``cognito``."""
        self.issuer = issuer
        """The token or identity provider's issuer URL (jwt and oidc)."""
        self._build = build

    @staticmethod
    def jwt(*, issuer: str, jwks_endpoint: str) -> ListenerAuthentication:
        """Verify bearer tokens (JWT) of ``issuer`` against its public keys at ``jwks_endpoint``.

        The ALB checks the signature and the ``iss`` and ``exp`` claims; a request without a valid token
        gets 401. Callers: ``python -m ml_inference_cdk.invoke --url URL --bearer-token TOKEN``.
        """
        _https_url("issuer", issuer)
        _https_url("jwks_endpoint", jwks_endpoint)

        def build(forward: elbv2.ListenerAction) -> elbv2.ListenerAction:
            return elbv2.ListenerAction.authenticate_jwt(
                issuer=issuer, jwks_endpoint=jwks_endpoint, next=forward
            )

        return ListenerAuthentication("jwt", build, issuer)

    @staticmethod
    def oidc(
        *,
        issuer: str,
        authorization_endpoint: str,
        token_endpoint: str,
        user_info_endpoint: str,
        client_id: str,
        client_secret: SecretValue,
        scope: str = "openid",
        session_timeout: Duration | None = None,
    ) -> ListenerAuthentication:
        """Sign users in with an OpenID Connect provider (authorization code flow, session cookie).

        ``client_secret`` should come from Secrets Manager (``SecretValue.secrets_manager(...)``).
        Default scope: openid; default session: the ALB's 7 days.
        """
        for name, url in (
            ("issuer", issuer),
            ("authorization_endpoint", authorization_endpoint),
            ("token_endpoint", token_endpoint),
            ("user_info_endpoint", user_info_endpoint),
        ):
            _https_url(name, url)
        if not Token.is_unresolved(client_id) and not client_id.strip():
            raise ValueError("client_id must be the OIDC client's id, got an empty string")

        def build(forward: elbv2.ListenerAction) -> elbv2.ListenerAction:
            return elbv2.ListenerAction.authenticate_oidc(
                issuer=issuer,
                authorization_endpoint=authorization_endpoint,
                token_endpoint=token_endpoint,
                user_info_endpoint=user_info_endpoint,
                client_id=client_id,
                client_secret=client_secret,
                scope=scope,
                session_timeout=session_timeout,
                on_unauthenticated_request=elbv2.UnauthenticatedAction.AUTHENTICATE,
                next=forward,
            )

        return ListenerAuthentication("oidc", build, issuer)

    @staticmethod
    def cognito(
        *,
        user_pool: cognito.IUserPool,
        user_pool_client: cognito.IUserPoolClient,
        user_pool_domain: cognito.IUserPoolDomain,
    ) -> ListenerAuthentication:
        """Sign users in with an Amazon Cognito user pool (its hosted UI, session cookie).

        The app client needs a secret, the authorization code grant and ``https://DOMAIN/oauth2/idpresponse``
        as a callback URL.
        """

        def build(forward: elbv2.ListenerAction) -> elbv2.ListenerAction:
            return elbv2_actions.AuthenticateCognitoAction(
                user_pool=user_pool,
                user_pool_client=user_pool_client,
                user_pool_domain=user_pool_domain,
                next=forward,
            )

        return ListenerAuthentication("cognito", build)

    def action(self, forward: elbv2.ListenerAction) -> elbv2.ListenerAction:
        """The authenticate action, followed by ``forward``."""
        return self._build(forward)


@dataclass(frozen=True, kw_only=True)
class WebApplicationFirewall:
    """An AWS WAF web ACL on the load balancer: AWS managed rule groups and a per-client rate limit.

    The rate limit keeps one client from driving autoscaling (and the bill) up; the managed groups block
    known-bad inputs and addresses. The common rule set's 8 KB body-size rule is counted, not enforced:
    inference payloads are bigger by design (the server bounds them itself).
    """

    rate_limit: int = 1000
    """Requests one client address may send in any 5-minute window before it is blocked (10-2,000,000,000).
    Default: 1000."""
    managed_rule_groups: Sequence[str] = (
        "AWSManagedRulesAmazonIpReputationList",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesCommonRuleSet",
    )
    """AWS managed rule groups to apply, by name. Default: IP reputation, known bad inputs, the common set."""

    def __post_init__(self) -> None:
        if isinstance(self.rate_limit, bool) or not 10 <= self.rate_limit <= 2_000_000_000:
            raise ValueError(
                f"rate_limit must be 10-2000000000 requests per 5 minutes (AWS WAF's range), "
                f"got {self.rate_limit!r}"
            )
        if isinstance(self.managed_rule_groups, str) or not self.managed_rule_groups:
            raise ValueError(
                "managed_rule_groups must be a non-empty list of AWS managed rule group names, "
                f"got {self.managed_rule_groups!r}"
            )


def check_exposure(
    *,
    internet_facing: bool,
    allowed_cidrs: Sequence[str] | None,
    authentication: ListenerAuthentication | None,
    https: bool,
    iam_http_api: bool,
    allow_public_http: bool,
) -> None:
    """Refuse an exposure that lets anyone on the internet call the model, or one AWS would reject.

    Raises:
        ValueError: naming the parameters and the choices that are allowed.
    """
    if authentication is not None and not https:
        raise ValueError(
            f"authentication={authentication.kind} needs an HTTPS listener (ALB authenticate actions run on "
            "HTTPS only): pass certificate= or domain_name= with hosted_zone="
        )
    if iam_http_api and internet_facing:
        raise ValueError(
            "iam_http_api=True puts the HTTP API in front of an INTERNAL load balancer (a VPC link); "
            "pass internet_facing=False, or drop iam_http_api"
        )
    if not internet_facing:
        return
    narrowed = allowed_cidrs is not None and not any(cidr in ANYWHERE for cidr in allowed_cidrs)
    if not narrowed and authentication is None:
        given = f"allowed_cidrs={list(allowed_cidrs)}" if allowed_cidrs is not None else "no allowed_cidrs"
        raise ValueError(
            f"internet_facing=True with {given} and no authentication lets anyone on the internet call the "
            f"model; choose at least one of: {CHOICES}"
        )
    if not https and not allow_public_http:
        raise ValueError(
            "internet_facing=True without certificate= or domain_name= serves plain HTTP on the internet "
            "(requests and predictions readable on the way); pass a certificate, or allow_public_http=True "
            "to accept that"
        )


def _https_url(name: str, value: str) -> None:
    if not Token.is_unresolved(value) and not value.startswith("https://"):
        raise ValueError(f"{name} must be an https:// URL, got {value!r}")
