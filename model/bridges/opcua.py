"""Config of the OPC UA bridge: endpoint, security, node maps and browse-based discovery."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from model.bridges.common import BridgeBase, DatatypeName, sparkplug_id

__all__ = ["BrowseRoot", "OpcUaBridgeConfig", "OpcUaDevice", "OpcUaNode", "OpcUaSecurity"]


class OpcUaNode(BaseModel):
    """One variable node as one metric."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Sparkplug metric name ('/' makes levels).")
    node_id: str = Field(min_length=1, description='Node id, e.g. "ns=2;s=Filler.Temperature" or "ns=2;i=1001".')
    mode: Literal["subscribe", "poll"] = Field(default="subscribe", description="Monitored item, or polled read.")
    sampling_interval_ms: float = Field(default=100.0, ge=0, description="Monitored item sampling interval.")
    datatype: DatatypeName | None = Field(default=None, description="Sparkplug datatype; null = from the server.")
    unit: str | None = Field(default=None, description="Engineering unit; null = the node's EURange/EngineeringUnits.")
    writable: bool = Field(default=False, description="DCMD may write it.")
    deadband: float = Field(default=0.0, ge=0, description="Report by exception: absolute change to report.")


class BrowseRoot(BaseModel):
    """Discover every variable under a node; metric names are the browse path below the root."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    root: str = Field(description="Node id to browse from.")
    max_depth: int = Field(default=4, ge=1, le=16, description="How many levels below the root to browse.")
    mode: Literal["subscribe", "poll"] = Field(default="subscribe", description="How found variables are read.")
    sampling_interval_ms: float = Field(default=100.0, ge=0, description="Sampling interval of found variables.")


class OpcUaDevice(BaseModel):
    """A group of nodes = one Sparkplug device."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: sparkplug_id = Field(description="Sparkplug device id.")
    nodes: list[OpcUaNode] = Field(default_factory=list, description="Variables named one by one.")
    browse: list[BrowseRoot] = Field(default_factory=list, description="Subtrees discovered into metrics.")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not self.nodes and not self.browse:
            raise ValueError(f"device {self.id}: needs nodes or browse")
        names = [node.name for node in self.nodes]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"device {self.id}: node name {name!r} used twice")
        return self


class OpcUaSecurity(BaseModel):
    """Message security: None, or Basic256Sha256 Sign / SignAndEncrypt with a client certificate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: Literal["None", "Basic256Sha256"] = Field(default="None", description="Security policy.")
    mode: Literal["None", "Sign", "SignAndEncrypt"] = Field(default="None", description="Message security mode.")
    certificate: Path | None = Field(default=None, description="Client certificate (DER or PEM).")
    private_key: Path | None = Field(default=None, description="Client private key (PEM).")
    server_certificate: Path | None = Field(default=None, description="Trusted server certificate.")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if (self.policy == "None") != (self.mode == "None"):
            raise ValueError("policy and mode must both be None or both be set")
        if self.policy != "None" and (self.certificate is None or self.private_key is None):
            raise ValueError("Basic256Sha256 needs certificate and private_key")
        return self


class OpcUaBridgeConfig(BridgeBase):
    """An OPC UA bridge: one server, one edge node."""

    kind: Literal["opcua"] = Field(default="opcua", description="Bridge kind.")
    endpoint: str = Field(pattern=r"^opc\.tcp://", description="Server endpoint, opc.tcp://host:port/path.")
    security: OpcUaSecurity = Field(default_factory=OpcUaSecurity, description="Message security.")
    username: str | None = Field(default=None, description="User name; null = anonymous.")
    password: SecretStr | None = Field(default=None, description="Prefer UNS_BRIDGES__<n>__PASSWORD over the file.")
    publishing_interval_ms: float = Field(default=100.0, gt=0, description="Subscription publishing interval.")
    poll_interval_s: float = Field(default=1.0, gt=0, description="Interval of polled nodes.")
    timeout_s: float = Field(default=4.0, gt=0, description="Request timeout; also the proof-of-life window.")
    devices: list[OpcUaDevice] = Field(min_length=1, description="Groups of nodes, one Sparkplug device each.")
