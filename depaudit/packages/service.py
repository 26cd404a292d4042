"""One service's needs: what its reached wheels, its own code and its own ELF files need, as
package answers, one per library or program."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from depaudit.collect.hint_calls import RESULT_OF
from depaudit.evidence import EvidenceStep, NeedKind, StepKind, Tier, service_step
from depaudit.findings import Finding
from depaudit.native.hints import FileHint
from depaudit.native.model import LibraryStatus, NativeNeed, NativeReport
from depaudit.packages.attempts import Attempts, alternative_rank, attempt_needs, group_attempts
from depaudit.packages.code_reach import DistributionCode
from depaudit.packages.loaded import EarlierLoad, ProcessOrder
from depaudit.packages.model import Need, strongest_needs
from depaudit.packages.python_rules import MAX_BUILD_FILE_BYTES, CudaFrom, PackageRule
from depaudit.packages.resolver import PackageResolver
from depaudit.packages.walk_tiers import WalkTiers
from depaudit.python.first_imports import FirstImport
from depaudit.python.model import Distribution
from depaudit.python.module_names import module_name
from depaudit.reading import read_regular
from depaudit.python.modules import ModuleReach
from depaudit.python.reach import Reached, ServiceReach


def service_needs(
    name: str,
    reach: ServiceReach,
    resolver: PackageResolver,
    *,
    distributions: Mapping[str, Distribution],
    natives: Mapping[str, NativeReport],  # per reached distribution key
    hints: Mapping[str, Sequence[FileHint]],  # per reached distribution key
    python_rules: Mapping[str, PackageRule],
    first_imports: Callable[[str], Mapping[str, FirstImport]],  # per distribution key
    modules: ModuleReach | None = None,  # which of the wheels' modules the service's imports run
    own_hints: Sequence[FileHint] = (),  # in the service's own code
    own_elf: NativeReport | None = None,  # ELF files shipped in the service's folder
    tiers: WalkTiers | None = None,  # the scan's ranked walk records, shared by its services
) -> tuple[tuple[Need, ...], list[Finding]]:
    """The service's needs (the strongest evidence for each) and the native stage's findings on the way."""
    tiers = tiers or WalkTiers()
    start = (service_step(name),)
    needs: list[Need] = []
    findings: list[Finding] = []
    python = {item.key: DistributionCode(item, distributions[item.key], modules, item.key in reach.roots) for item in reach.reached}
    walked = {item.key: tiers.of(natives[item.key], modules, python[item.key]) for item in reach.reached}
    loads = {key: [(need, python[key].once_imported(need.tier, tier)) for need, tier, _ in found] for key, found in walked.items()}
    order = ProcessOrder(reach, loads, distributions, first_imports)
    for item in reach.reached:
        findings.extend(natives[item.key].findings)
        rule = python_rules.get(item.key)
        dist = distributions[item.key]
        if rule is not None and not rule.applies(dist.version, frozenset(dist.files)):
            rule = None
        if rule is not None and rule.cuda_from is not None:
            rule = rule.for_build(build_major(rule.cuda_from, dist))
        # A build for another CUDA major than the image's needs that major's cuDNN package.
        own = resolver.for_cuda_major(rule.cuda) if rule is not None and rule.cuda else resolver
        found: list[Need] = []
        prefix = _Prefixes(start, item.chain)
        for need, tier, steps in walked[item.key]:
            # Found nowhere: but an earlier import may have loaded an object of that name.
            earlier = order.earlier(item.key, need.soname) if need.status is LibraryStatus.SYSTEM else None
            if earlier is None and need.status is LibraryStatus.SYSTEM and rule is not None:
                earlier = _loaded_by_rule(item.key, rule, need.soname, distributions)
            found.append(own.native_need(need, item.tier.weakest(tier), prefix(steps), earlier))
        attempts, rest = group_attempts(hints[item.key], dist.shared_objects)
        found.extend(_distribution_hint_needs(item, rest, rule, own, prefix, python[item.key], distributions))
        for group in attempts:
            found.extend(_attempt_needs(item, group, natives[item.key], own, order, python[item.key], start))
        needs.extend(_advised(found, rule, own.rules.distro, distributions) if rule is not None and rule.wheels else found)
    for hint in own_hints:
        # The service's own code: whatever it loads or runs, it needs, unless it catches the
        # failure. A path it builds names its own files, whose ELF needs are walked below.
        if not hint.hint.by_path:
            needs.extend(resolver.hint_needs(hint, _caught(hint, Tier.REQUIRED), start))
    if own_elf is not None:
        findings.extend(own_elf.findings)
        needs.extend(resolver.native_need(need, need.tier, start) for need in own_elf.needs)
    return strongest_needs(needs), findings


def build_major(where: CudaFrom, dist: Distribution) -> str | None:
    """The CUDA major the installed build says it targets, read as text (never imported); None
    when the file is absent, unreadable or does not say."""
    if where.file not in dist.files:
        return None
    try:
        text = read_regular(dist.site_packages / where.file, MAX_BUILD_FILE_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return None
    return where.major(text)


def _joined(chain: tuple[EvidenceStep, ...], steps: tuple[EvidenceStep, ...]) -> tuple[EvidenceStep, ...]:
    """A distribution's chain, then the module steps it does not already hold (a distribution
    reached by an undeclared import has them in its chain)."""
    return (*chain, *(step for step in steps if step not in chain))


class _Prefixes:
    """The evidence before each need of one reached distribution: the service, the way to the
    distribution, then the module steps to the code (`_joined`). A walk's records and hints share
    a few module steps: each prefix is made once per steps tuple (kept, so its id stays its own)."""

    def __init__(self, start: tuple[EvidenceStep, ...], chain: tuple[EvidenceStep, ...]) -> None:
        self.start, self.chain = start, chain
        self._made: dict[int, tuple[tuple[EvidenceStep, ...], tuple[EvidenceStep, ...]]] = {}

    def __call__(self, steps: tuple[EvidenceStep, ...]) -> tuple[EvidenceStep, ...]:
        known = self._made.get(id(steps))
        if known is None:
            known = self._made[id(steps)] = (steps, (*self.start, *_joined(self.chain, steps)))
        return known[1]


def _caught(hint: FileHint, tier: Tier) -> Tier:
    """A load or start whose failure the code catches (`except OSError:` around `CDLL`,
    `except FileNotFoundError:` around `subprocess.run`) is survived: optional at most."""
    return tier.weakest(Tier.OPTIONAL) if hint.hint.guarded else tier


def _attempt_needs(
    item: Reached,
    group: Attempts,
    native: NativeReport,
    resolver: PackageResolver,
    order: ProcessOrder,
    python: DistributionCode,
    start: tuple[EvidenceStep, ...],
) -> list[Need]:
    """What the shipped files a distribution's code loads by path need, as surely as that load."""
    hint = group.hints[0]
    tier, steps = python.of(hint)
    tier = _caught(hint, tier)
    # A load in a function runs after its module's own imports: what they load is in the process.
    imported = _imported_by(hint.file, python.modules, item.key)

    def resolve(record: NativeNeed, prefix: tuple[EvidenceStep, ...]) -> Need:
        earlier = order.earlier(item.key, record.soname, imported) if record.status is LibraryStatus.SYSTEM else None
        return resolver.native_need(record, tier, prefix, earlier)

    return attempt_needs(group, native.needs, resolve, (*start, *_joined(item.chain, steps)))


def _imported_by(file: str, modules: ModuleReach | None, key: str) -> dict[str, FirstImport]:
    """The other distributions the module at `file` imports at module level, outside any guard."""
    found = module_name(file)
    if modules is None or found is None:
        return {}
    imported: dict[str, FirstImport] = {}
    for target, line in modules.imports_of(found[0]):
        owner = modules.index.get(target)
        if owner is not None and owner.key != key and owner.key not in imported:
            imported[owner.key] = FirstImport(file, line, target)
    return imported


def _with_rule(chain: tuple[EvidenceStep, ...], key: str, rule: PackageRule) -> tuple[EvidenceStep, ...]:
    """The chain with the rule that makes the need surer, just before the need itself."""
    step = EvidenceStep(StepKind.RULE, f"rules/python/packages.toml [{key}]: {rule.source}")
    at = next((i for i, s in enumerate(chain) if s.kind is StepKind.NEED), len(chain))
    return (*chain[:at], step, *chain[at:])


def _returned_program(
    hint: FileHint, tier: Tier, prefix: tuple[EvidenceStep, ...], resolver: PackageResolver, modules: ModuleReach | None
) -> list[Need]:
    """A program named by what a call returns (pydub's `[cls.converter, …]`, `converter =
    get_encoder_name()`, which returns "avconv" or "ffmpeg"): one of those texts runs, so the one
    the image has, else the first the distro packages, is needed. Nothing when the returns are
    not all literal texts: never a guess."""
    found = module_name(hint.file)
    if modules is None or found is None:
        return []
    needs: list[Need] = []
    for candidate in hint.hint.candidates:
        if not candidate.startswith(RESULT_OF):
            continue
        callee = candidate[len(RESULT_OF) :]
        programs = [p for p in modules.returns_of(found[0], callee) if p.strip()]
        if not programs:
            continue
        shown = ", ".join(repr(p) for p in programs)
        options = [resolver.named_need(NeedKind.PROGRAM, p.split()[0], tier, prefix) for p in programs]
        rank = [alternative_rank([option]) for option in options]
        chosen = min(range(len(options)), key=lambda i: (rank[i], i))
        why = ("the first this image has", "the first the distro packages", "the first, and none is packaged")[rank[chosen]]
        label = f"{hint.hint.call}({callee}()): it returns {shown}; {programs[chosen]!r} is {why}"
        step = EvidenceStep(StepKind.CALL, label, hint.file, hint.hint.line)
        needs.append(resolver.named_need(NeedKind.PROGRAM, programs[chosen].split()[0], tier, (*prefix, step)))
    return needs


def _distribution_hint_needs(
    item: Reached,
    hints: Sequence[FileHint],
    rule: PackageRule | None,
    resolver: PackageResolver,
    prefix_of: _Prefixes,
    python: DistributionCode,
    distributions: Mapping[str, Distribution],
) -> list[Need]:
    """What a reached distribution's Python code loads or runs, corrected by its curated rule."""
    needs: list[Need] = []
    found: set[tuple[NeedKind, str]] = set()
    for hint in hints:
        tier, steps = python.of(hint)
        prefix = prefix_of(steps)
        if any(c.startswith(RESULT_OF) for c in hint.hint.candidates):
            made = _returned_program(hint, _caught(hint, tier), prefix, resolver, python.modules)
        else:
            made = resolver.hint_needs(hint, _caught(hint, tier), prefix)
        for need in made:
            key = (need.kind, need.name)
            if rule is not None and key in rule.ignore:
                continue
            if rule is not None and key in rule.needs:
                # The rule confirms it is really needed, as strongly as the rule says (no more:
                # it caps the code's tier too), unless the code itself survives its absence;
                # where that makes it surer, the chain says so.
                ruled = _caught(hint, python.tier.weakest(rule.tier))
                chain = _with_rule(need.chain, item.key, rule) if ruled.rank < need.tier.rank else need.chain
                need = replace(need, tier=ruled, chain=chain)
            found.add(key)
            needs.append(need)
    for kind, need_name in rule.needs if rule is not None else ():
        if (kind, need_name) not in found:
            evidence = EvidenceStep(StepKind.RULE, f"rules/python/packages.toml [{item.key}]: {rule.source}")
            prefix = (*prefix_of(python.steps), evidence)
            needs.append(_rule_need(rule, kind, need_name, python.tier.weakest(rule.tier), prefix, resolver, distributions))
    return needs


def _rule_need(
    rule: PackageRule,
    kind: NeedKind,
    name: str,
    tier: Tier,
    prefix: tuple[EvidenceStep, ...],
    resolver: PackageResolver,
    distributions: Mapping[str, Distribution],
) -> Need:
    """A need the rule adds: from the distribution the rule names for it when that one is
    installed and ships it (by file name), else as any library loaded by name."""
    wheel = dict(rule.wheels).get((kind, name))
    provider = distributions.get(wheel) if wheel is not None else None
    shipped = _shipped(provider, name)
    if provider is not None and shipped is not None:
        return resolver.wheel_need(name, tier, prefix, shipped, provider.label)
    return resolver.named_need(kind, name, tier, prefix)


def _shipped(provider: Distribution | None, name: str) -> str | None:
    """The file of `provider` named `name`, if it ships one."""
    return next((f for f in provider.shared_objects if f.rsplit("/", 1)[-1] == name), None) if provider else None


def _loaded_by_rule(key: str, rule: PackageRule, soname: str, distributions: Mapping[str, Distribution]) -> EarlierLoad | None:
    """A DT_NEEDED of the distribution's own objects (onnxruntime's TensorRT provider links
    libcudnn.so.9) that its rule has loaded by path from an installed wheel (the CUDA provider's
    cuDNN, from nvidia-cudnn-cu13 by onnxruntime.preload_dlls()): one soname is one object in a
    process, so glibc takes that copy for the link too; whatever premise makes the rule's own
    need the wheel's makes this one the wheel's."""
    wheel = dict(rule.wheels).get((NeedKind.SONAME, soname))
    provider = distributions.get(wheel) if wheel is not None else None
    shipped = _shipped(provider, soname)
    if provider is None or shipped is None:
        return None
    label = f"rules/python/packages.toml [{key}]: {provider.label}'s {shipped} is loaded by path for the rule's need of {soname}"
    return EarlierLoad(shipped, provider.key, EvidenceStep(StepKind.LOADED, label, name=provider.key), False)


def _advised(needs: list[Need], rule: PackageRule, distro: str, distributions: Mapping[str, Distribution]) -> list[Need]:
    """Each of the distribution's needs the image lacks that the rule names a wheel for, when that
    wheel is not installed: with it and the image for the build's CUDA major that has it (the
    cuDNN variant for cuDNN, the runtime one for CUDA's own libraries) as the other ways to satisfy it."""
    wheels = dict(rule.wheels)
    advised = []
    for need in needs:
        wheel = wheels.get((need.kind, need.name))
        if wheel is not None and wheel not in distributions and need.status.fails:
            image = f", or {_cuda_image(rule.cuda, distro, need.name)}" if rule.cuda else ""
            step = EvidenceStep(StepKind.RULE, f"not installed: {wheel} (it ships {need.name}){image}", name=wheel)
            need = replace(need, chain=(*need.chain, step))
        advised.append(need)
    return advised


def _cuda_image(major: str, distro: str, soname: str) -> str:
    """NVIDIA's tag scheme for its runtime images, any X.Y.Z of that major: X.Y.Z-cudnn-runtime-ubuntuAA.BB
    for cuDNN, X.Y.Z-runtime-ubuntuAA.BB for CUDA's own libraries."""
    os_tag = distro.replace("-", "")
    if soname.startswith("libcudnn"):
        return f"a cuDNN base image for CUDA {major} (nvidia/cuda:{major}.*-cudnn-runtime-{os_tag})"
    return f"a CUDA {major} runtime base image (nvidia/cuda:{major}.*-runtime-{os_tag})"
