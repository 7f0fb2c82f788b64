"""The GraphQL schema subset the ``runpod`` SDK 1.12 sends, so its queries validate as on RunPod.

Reconstructed from what the SDK, runpodctl, dstack and SkyPilot send (field types
are the best guess where RunPod's published schema was not reachable). Queries are
parsed and validated against it strictly: a raw quote or newline inside a string
literal, which the SDK never escapes, is a syntax error here as it is on RunPod.
"""

from __future__ import annotations

from functools import lru_cache

from graphql import GraphQLSchema, build_schema

_POD_INPUT_FIELDS = """
  name: String, imageName: String, cloudType: CloudTypeEnum, startSsh: Boolean, startJupyter: Boolean,
  gpuTypeId: String, supportPublicIp: Boolean, gpuCount: Int, volumeInGb: Int, containerDiskInGb: Int,
  minVcpuCount: Int, minMemoryInGb: Int, allowedCudaVersions: [String], minCudaVersion: String,
  dataCenterId: String, countryCode: String, dockerArgs: String, ports: String, volumeMountPath: String,
  env: [EnvironmentVariableInput], templateId: String, networkVolumeId: String, minDownload: Int, minUpload: Int,
  containerRegistryAuthId: String, stopAfter: String, terminateAfter: String, compliance: [String]
"""

SDL = f"""
scalar Void

enum CloudTypeEnum {{ ALL SECURE COMMUNITY }}
enum PodStatus {{ CREATED RUNNING RESTARTING EXITED PAUSED DEAD TERMINATED }}

type Query {{
  myself: User
  pod(input: PodFilter!): Pod
  gpuTypes(input: GpuTypeFilter): [GpuType]
}}

type Mutation {{
  podFindAndDeployOnDemand(input: PodFindAndDeployOnDemandInput): Pod
  podRentInterruptable(input: PodRentInterruptableInput!): Pod
  deployCpuPod(input: DeployCpuPodInput): Pod
  podStop(input: PodStopInput!): Pod
  podResume(input: PodResumeInput!): Pod
  podBidResume(input: PodBidResumeInput!): Pod
  podTerminate(input: PodTerminateInput!): Void
  updateUserSettings(input: UpdateUserSettingsInput): User
}}

input PodFilter {{ podId: String! }}
input GpuTypeFilter {{ id: String }}
input GpuLowestPriceInput {{ gpuCount: Int, minMemoryInGb: Int, minVcpuCount: Int, secureCloud: Boolean, totalDisk: Int }}
input EnvironmentVariableInput {{ key: String!, value: String! }}
input PodFindAndDeployOnDemandInput {{ {_POD_INPUT_FIELDS} }}
input PodRentInterruptableInput {{ bidPerGpu: Float!, cudaVersion: String, volumeKey: String, {_POD_INPUT_FIELDS} }}
input DeployCpuPodInput {{
  name: String, imageName: String, cloudType: CloudTypeEnum, startSsh: Boolean, instanceId: String,
  dataCenterId: String, countryCode: String, dockerArgs: String, ports: String, volumeMountPath: String,
  env: [EnvironmentVariableInput], templateId: String, networkVolumeId: String, containerDiskInGb: Int,
  minDownload: Int, minUpload: Int, deployCost: Float
}}
input PodStopInput {{ podId: String! }}
input PodResumeInput {{ podId: String!, gpuCount: Int, allowedCudaVersions: [String] }}
input PodBidResumeInput {{ podId: String!, bidPerGpu: Float!, gpuCount: Int }}
input PodTerminateInput {{ podId: String! }}
input UpdateUserSettingsInput {{ pubKey: String }}

type User {{
  id: String, pubKey: String, email: String, clientBalance: Float, currentSpendPerHr: Float, spendLimit: Float,
  pods: [Pod], networkVolumes: [NetworkVolume]
}}
type NetworkVolume {{ id: String, name: String, size: Int, dataCenterId: String }}
type Machine {{ podHostId: String, gpuDisplayName: String, location: String, dataCenterId: String }}
type PodRuntimePort {{ ip: String, isIpPublic: Boolean, privatePort: Int, publicPort: Int, type: String }}
type PodRuntimeGpu {{ id: String, gpuUtilPercent: Int, memoryUtilPercent: Int }}
type PodRuntimeContainer {{ cpuPercent: Int, memoryPercent: Int }}
type PodRuntime {{ uptimeInSeconds: Int, ports: [PodRuntimePort], gpus: [PodRuntimeGpu], container: PodRuntimeContainer }}
type Pod {{
  id: String, name: String, imageName: String, env: [String], machineId: String, machine: Machine,
  desiredStatus: PodStatus, lastStatusChange: String, containerDiskInGb: Int, costPerHr: Float, dockerArgs: String,
  dockerId: String, gpuCount: Int, memoryInGb: Float, podType: String, port: Int, ports: String, uptimeSeconds: Int,
  vcpuCount: Float, volumeInGb: Float, volumeMountPath: String, runtime: PodRuntime
}}
type LowestPrice {{
  minimumBidPrice: Float, uninterruptablePrice: Float, stockStatus: String, availableGpuCounts: [Int],
  gpuName: String, gpuTypeId: String, minMemory: Int, minVcpu: Int
}}
type GpuType {{
  id: String, displayName: String, manufacturer: String, memoryInGb: Int, cudaCores: Int, maxGpuCount: Int,
  secureCloud: Boolean, communityCloud: Boolean, securePrice: Float, communityPrice: Float, oneMonthPrice: Float,
  threeMonthPrice: Float, oneWeekPrice: Float, communitySpotPrice: Float, secureSpotPrice: Float,
  lowestPrice(input: GpuLowestPriceInput): LowestPrice
}}
"""


@lru_cache(maxsize=1)
def schema() -> GraphQLSchema:
    """The built schema (built once: it is immutable and building it takes a few milliseconds)."""
    return build_schema(SDL)
