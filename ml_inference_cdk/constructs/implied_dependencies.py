"""Template hygiene: leave out the DependsOn entries a resource already implies by its own references.

The CDK adds some (a Lambda function on the role it reads with Fn::GetAtt, an EKS cluster on its subnets, the
providers of cdk-ecr-deployment and of the VPC's default-security-group restriction) and cfn-lint reports each
as W3005. CloudFormation derives the same ordering from the references, so dropping exactly those changes
nothing about a deployment. Every stack of this app applies the aspect; apply it to yours with
``Aspects.of(stack).add(DropImpliedDependsOn())``.
"""

from __future__ import annotations

from typing import Any

import jsii
from aws_cdk import CfnElement, CfnResource, IAnyProducer, IAspect, IResolveContext, Lazy, Stack
from constructs import IConstruct


@jsii.implements(IAspect)
class DropImpliedDependsOn:
    """Leave out the DependsOn entries a resource already implies through its own Ref or Fn::GetAtt.

    The CDK adds some (a Lambda function on its role, the EKS cluster on its subnets) and cfn-lint flags each
    as W3005. CloudFormation derives the same ordering from the references, so dropping exactly those changes
    nothing about the deployment; every other DependsOn is kept. Computed lazily, once every construct-level
    dependency has been turned into a resource-level one.
    """

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, CfnResource):
            node.add_override("DependsOn", Lazy.uncached_any(_DependsOnWithoutImplied(node)))


@jsii.implements(IAnyProducer)
class _DependsOnWithoutImplied:
    def __init__(self, resource: CfnResource) -> None:
        self._resource = resource

    def produce(self, context: IResolveContext) -> list[str] | None:
        stack = Stack.of(self._resource)
        depends_on = {
            stack.resolve(stack.get_logical_id(target))
            for target in self._resource.obtain_dependencies()
            if isinstance(target, CfnElement) and Stack.of(target) is stack
        }
        implied = _referenced_logical_ids(stack.resolve(self._resource._cfn_properties))
        return sorted(depends_on - implied) or None


def _referenced_logical_ids(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        if isinstance(value.get("Ref"), str):
            found.add(value["Ref"])
        get_att = value.get("Fn::GetAtt")
        if isinstance(get_att, list) and get_att and isinstance(get_att[0], str):
            found.add(get_att[0])
        for item in value.values():
            found |= _referenced_logical_ids(item)
    elif isinstance(value, list):
        for item in value:
            found |= _referenced_logical_ids(item)
    return found
