"""What each service's image is built on: its FROM chain, the base image or its profile, the
Python environment to resolve against, and the image's environment variables.

The command line wins over the config, a family's own setting over its parent's, and the
config's top level over the conventions (the image's own site-packages, a profile of the
FROM chain's external image)."""

from __future__ import annotations

import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from depaudit import consulted
from depaudit.collect.model import Service
from depaudit.fleet.families import BaseChain, chain_env
from depaudit.fleet.layout import FamilySpec, Fleet, Placement
from depaudit.image.model import BaseImage, ImageFormatError
from depaudit.image.open import open_image, open_rootfs
from depaudit.lock.tags import DISTRO_PYTHON, wheel_target
from depaudit.native.reads import read_by_the_scan
from depaudit.options import DEFAULT_DISTRO, InputError, ScanOptions
from depaudit.packages.index import default_cache_dir
from depaudit.packages.driver import DriverDataError, DriverFiles, driver_path, load_driver_files
from depaudit.packages.index import default_cache_dir
from depaudit.packages.mounts import VARIABLE, CapabilitySource, DriverMounts, driver_mounts
from depaudit.packages.profiles import BaseProfile, load_profile
from depaudit.packages.rules import DistroRules, RulesError, known_distros, load_rules, rules_dir
from depaudit.python.locate import EnvironmentChoice, default_environment, environment_folders, interpreter_folders

if TYPE_CHECKING:
    from depaudit.lock.kept import KeptWheels


@dataclass(frozen=True)
class ServiceBase:
    """What one service's image is built on, as its Dockerfile's FROM chain says."""

    label: str | None  # the base it is audited against: an image path or a profiled reference
    families: tuple[str, ...]  # family images between the service and that base
    profile: BaseProfile | None
    ld_library_path: tuple[str, ...]
    cuda_version: str | None = None  # CUDA_VERSION of the image: names NVIDIA's CUDA packages
    chain: BaseChain | None = None  # the Dockerfiles it is built from
    image: BaseImage | None = None  # the base image read as files, when one is given
    environment: EnvironmentChoice = field(default_factory=lambda: EnvironmentChoice((), ""))  # of its image
    # The NVIDIA driver files its image's NVIDIA_DRIVER_CAPABILITIES mounts; None when the image's
    # environment is not known (no base image, no profile, no input sets the variable).
    driver_mounts: DriverMounts | None = None

    @property
    def site_packages(self) -> tuple[Path, ...]:
        return self.environment.folders


class Bases:
    """The bases of one scan's services: each image and profile opened once."""

    def __init__(self, options: ScanOptions, fleet: Fleet) -> None:
        self.options = options
        self.fleet = fleet
        self.config = fleet.config
        self.images: dict[str, BaseImage] = {}
        self.profiles: set[str] = set()  # distros of the profiles used
        self.given = _open_base_image(options)  # --rootfs / --image
        if self.given is not None:
            self.images[str(self.given.label)] = self.given
        self.fixed = _profile(options.base_image)  # --base-image
        self._profiles: dict[str, BaseProfile | None] = {}  # reference → profile, read once
        self._environments: dict[tuple[int, str], Path | None] = {}  # (image, its path) → copied out
        self._locks: dict[tuple[Path, str, str, tuple[Path, ...]], EnvironmentChoice] = {}  # each lock read once per target
        self._default: EnvironmentChoice | None = None
        # (folders, interpreter, source) → the environment they name: every service of a family asks
        self._named: dict[tuple[tuple[Path, ...], Path | None, str], EnvironmentChoice] = {}
        self._kept: KeptWheels | None = None  # the cache's lock trees, held while this scan lives
        self._driver_files: DriverFiles | None = None
        self.explicit = distro_rules(options.distro, self.given) if options.distro else None  # a usage error first

    def of(self, service: Service, placement: Placement) -> ServiceBase:
        chain = self.fleet.chain(placement)
        lineage = self.fleet.lineage(placement.family)
        image, profile = self._base(chain, lineage)
        base_env = image.env if image else (profile.env if profile else {})
        environment = chain_env(chain, base_env) if chain else dict(base_env)
        if self.config is not None:
            environment.update(self.config.env)
        for family in reversed(lineage):  # the farthest ancestor first, the nearest family last
            environment.update(family.env)
        environment.update(self.options.env)
        if profile is not None:
            self.profiles.add(profile.distro)
        label = image.label if image else (profile.image if profile else None)
        return ServiceBase(
            label=label,
            families=chain.families if chain else (),
            profile=profile,
            ld_library_path=tuple(p for p in environment.get("LD_LIBRARY_PATH", "").split(":") if p),
            cuda_version=environment.get("CUDA_VERSION"),
            chain=chain,
            image=image,
            environment=self._environment(lineage, image, self._distro(image, profile)),
            driver_mounts=self._driver_mounts(environment, chain, lineage, image, profile),
        )

    def _driver_mounts(
        self,
        environment: dict[str, str],
        chain: BaseChain | None,
        lineage: Sequence[FamilySpec],
        image: BaseImage | None,
        profile: BaseProfile | None,
    ) -> DriverMounts | None:
        source = self._capability_source(chain, lineage, image, profile)
        if image is None and profile is None and VARIABLE not in environment:
            return None  # an image we cannot see into: every driver file counts as mounted
        if self._driver_files is None:
            try:
                self._driver_files = load_driver_files(driver_path(rules_dir()))
            except DriverDataError as error:
                raise InputError(str(error)) from error
        return driver_mounts(environment, self._driver_files, source)

    def _capability_source(
        self, chain: BaseChain | None, lineage: Sequence[FamilySpec], image: BaseImage | None, profile: BaseProfile | None
    ) -> CapabilitySource:
        """Who sets NVIDIA_DRIVER_CAPABILITIES last, in the order of(): the command line, the
        nearest family's config, the config, the nearest Dockerfile's ENV line, the base image.
        A fix goes to the nearest family Dockerfile (the service's own when it has no family)."""
        add_to = None
        if chain is not None and chain.dockerfiles:
            add_to = chain.dockerfiles[len(chain.dockerfiles) - len(chain.families) if chain.families else 0].display
        if VARIABLE in self.options.env:
            return CapabilitySource("--env", dockerfile=add_to)
        for family in lineage:
            if VARIABLE in family.env:
                return CapabilitySource(f"family {family.name} in {self._config_name()}", dockerfile=add_to)
        if self.config is not None and VARIABLE in self.config.env:
            return CapabilitySource(self._config_name(), dockerfile=add_to)
        for dockerfile in chain.dockerfiles if chain is not None else ():
            read = dockerfile.image()
            if read is not None and VARIABLE in read.env_lines:
                where = f"{dockerfile.display}:{read.env_lines[VARIABLE]}"
                return CapabilitySource(where, line=where)
        if image is not None:
            return CapabilitySource(f"the base image {image.label}", dockerfile=add_to)
        if profile is not None:
            return CapabilitySource(f"the base image {profile.image}", dockerfile=add_to)
        return CapabilitySource("nothing", dockerfile=add_to)

    def rules(self) -> DistroRules:
        """The target distro's rules: the command line's, the config's, else the one distro
        every base image and profile agrees on, else the default."""
        if self.explicit is not None:
            return self.explicit
        distro = self.config.distro if self.config is not None else None
        if distro is None:
            distros = {image.distro for image in self.images.values() if image.distro in known_distros()}
            distros |= self.profiles
            distro = distros.pop() if len(distros) == 1 else None
        return distro_rules(distro, None)

    def is_gpu(self, family: str) -> bool:
        """A GPU family: configured so, or built on a CUDA image (an unknown base counts as GPU:
        only a family known to be CPU is kept from gaining a hoisted package)."""
        for spec in self.fleet.lineage(family):
            if spec.gpu is not None:
                return spec.gpu
        chain = self.fleet.chain(Placement(None, family))
        image, profile = self._base(chain, self.fleet.lineage(family))
        if profile is not None:
            return "CUDA_VERSION" in profile.env or "cuda" in profile.image
        if image is not None:
            return "CUDA_VERSION" in image.env or "cuda" in image.label.lower()
        reference = chain.image if chain else None
        return reference is None or "cuda" in reference.lower()

    def provided(self, family: str, rules: DistroRules) -> tuple[str, frozenset[str]]:
        """What the family's base image installs already, and how to name that image: the
        image's dpkg database when it is given, else its profile, else the distro's base packages."""
        chain = self.fleet.chain(Placement(None, family))
        image, profile = self._base(chain, self.fleet.lineage(family))
        if image is not None:
            return str(image.label), frozenset(image.dpkg.installed)
        if profile is not None:
            return profile.image, profile.packages | rules.present
        reference = chain.image if chain is not None and chain.image else f"a {rules.distro} image"
        return reference, rules.present

    def _base(self, chain: BaseChain | None, lineage: Sequence[FamilySpec]) -> tuple[BaseImage | None, BaseProfile | None]:
        if self.given is not None or self.fixed is not None:
            return self.given, self.fixed
        configured = next((f.base_image for f in lineage if f.base_image), None)
        if configured is None and self.config is not None:
            configured = self.config.base_image
        if configured is not None:
            return self._configured(configured)
        if chain is not None and chain.image:
            if chain.image not in self._profiles:  # every service of a family asks again
                self._profiles[chain.image] = _known_profile(chain.image)
            return None, self._profiles[chain.image]
        return None, None

    def _configured(self, reference: str) -> tuple[BaseImage | None, BaseProfile | None]:
        path = Path(reference)
        if path.is_absolute() and consulted.exists(path):
            if reference not in self.images:
                try:
                    self.images[reference] = open_image(path)
                except ImageFormatError as error:
                    raise InputError(f"base-image {reference}: {error}") from error
            return self.images[reference], None
        if reference not in self._profiles:
            self._profiles[reference] = _profile(reference)
        return None, self._profiles[reference]

    def _environment(self, lineage: Sequence[FamilySpec], image: BaseImage | None, distro: str) -> EnvironmentChoice:
        """The command line's, a family's, the config's (an environment, or a lock whose wheels
        stand for it), the image's own; else the default ($VIRTUAL_ENV, ./.venv, depaudit's own
        interpreter)."""
        options = self.options
        if options.site_packages:
            return self._named_once(options.site_packages, None, "--site-packages")
        if options.python is not None:
            return self._named_once((), options.python, "--python")
        if options.lock is not None:
            return self._lock(options.lock, lineage, distro, "--lock", image)
        for family in lineage:
            if family.site_packages or family.python:
                return self._named_once(family.site_packages, family.python, f"family {family.name} in {self._config_name()}")
            if family.lock is not None:
                return self._lock(family.lock, lineage, distro, f"family {family.name} in {self._config_name()}", image)
        if self.config is not None and (self.config.site_packages or self.config.python):
            return self._named_once(self.config.site_packages, self.config.python, self._config_name())
        if self.config is not None and self.config.lock is not None:
            return self._lock(self.config.lock, lineage, distro, self._config_name(), image)
        if image is not None:
            own = [(path, host) for path in image.site_packages if (host := self._image_environment(image, path)) is not None]
            if own:
                return EnvironmentChoice(
                    tuple(host.resolve() for _, host in own),
                    f"the site-packages of {image.label}",
                    shown=tuple(f"{image.label}:{path}" for path, _ in own),
                )
        if self._default is None:
            self._default = default_environment(Path.cwd(), consulted.Environ())
        if image is not None:
            # The image was meant to say (none there, or whited out): the report says what was read instead.
            return replace(self._default, source=f"{self._default.source}: {image.label} holds no site-packages")
        return self._default

    def _distro(self, image: BaseImage | None, profile: BaseProfile | None) -> str:
        """The distro whose glibc decides which wheels of a lock the image installs."""
        if self.options.distro:
            return self.options.distro
        if image is not None and image.distro in known_distros():
            return image.distro
        if profile is not None:
            return profile.distro
        return (self.config.distro if self.config is not None else None) or DEFAULT_DISTRO

    def _lock(
        self, lock: Path, lineage: Sequence[FamilySpec], distro: str, named_by: str, image: BaseImage | None = None
    ) -> EnvironmentChoice:
        """The wheels `lock` pins for the image's Python and distro, laid out as they would install."""
        if not lock.is_file():
            raise InputError(f"lock: no such file: {lock} (from {named_by})")
        options, config = self.options, self.config
        version = (
            options.python_version
            or next((family.python_version for family in lineage if family.python_version), None)
            or (config.python_version if config is not None else None)
            or (image_python(image) if image is not None else None)
            or DISTRO_PYTHON.get(distro, DISTRO_PYTHON[DEFAULT_DISTRO])
        )
        find_links = (*options.find_links, *(p for family in lineage for p in family.find_links), *(config.find_links if config else ()))
        key = (lock.resolve(), version, distro, find_links)
        if key not in self._locks:
            # Imported here: a scan without a lock (most) never loads the lock readers (~0.1 s).
            from depaudit.lock.environment import lock_environment
            from depaudit.lock.pip_cache import pip_cache_dir

            target = wheel_target(version, distro)
            cache = options.cache_dir or default_cache_dir()
            read = lock_environment(
                lock.resolve(),
                target,
                find_links=find_links,
                cache=cache,
                reads=read_by_the_scan,
                index_url=options.index_url or (config.index_url if config is not None else None),
                pip_cache=pip_cache_dir(),
                processes=options.processes,
                kept=self._kept_wheels(cache),
            )
            source = f"the wheels of {lock} for Python {version} on {distro}, from {named_by}"
            self._locks[key] = EnvironmentChoice((read.site_packages,), source, findings=read.findings)
        return self._locks[key]

    def _named_once(self, site_packages: Sequence[Path], python: Path | None, source: str) -> EnvironmentChoice:
        key = (tuple(site_packages), python, source)
        if key not in self._named:
            self._named[key] = _named(site_packages, python, source)
        return self._named[key]

    def _kept_wheels(self, cache: Path) -> KeptWheels | None:
        """The cache's lock share, held until this scan's Bases go (its site-packages are read
        until then), then trimmed; None when it cannot be held (the scan goes on unbounded)."""
        if self._kept is None:
            from depaudit.lock.kept import KeptWheels

            try:
                self._kept = KeptWheels(cache)
            except OSError:
                return None
            weakref.finalize(self, self._kept.close)
        return self._kept

    def _config_name(self) -> str:
        return self.config.path.name if self.config is not None else "the config"

    def _image_environment(self, image: BaseImage, path: str) -> Path | None:
        """A site-packages of the image, readable here (copied out of a layered image once)."""
        key = (id(image), path)
        if key not in self._environments:
            self._environments[key] = image.fs.python_environment(path, read_by_the_scan)
        return self._environments[key]


def image_python(image: BaseImage) -> str | None:
    """X.Y of the base image's own Python, when it has one: its site-packages' folder name, else
    the newest `python3.X` among its programs (/usr/local/bin first, where python:3.X images keep it)."""
    for path in image.site_packages:
        match = re.search(r"/python(3\.\d+)/", path + "/")
        if match:
            return match.group(1)
    for folder in ("/usr/local/bin", "/usr/bin"):
        versions = [int(name[len("python3.") :]) for name in image.fs.listdir(folder) if re.fullmatch(r"python3\.\d+", name)]
        if versions:
            return f"3.{max(versions)}"
    return None


def _named(site_packages: Sequence[Path], python: Path | None, source: str) -> EnvironmentChoice:
    """Folders (a site-packages or a venv root each) or an interpreter, as named by `source`."""
    for path in site_packages:
        if not consulted.is_dir(path):
            raise InputError(f"site-packages: not a folder: {path} (from {source})")
    if python is not None:
        folders = interpreter_folders(python)
    else:
        folders = tuple(folder for path in site_packages for folder in environment_folders(path))
    return EnvironmentChoice(tuple(p.resolve() for p in folders), source)


def distro_rules(distro: str | None, image: BaseImage | None) -> DistroRules:
    """The rules of `distro`, else of the image's distro when known, else of the default."""
    if distro is None:
        distro = image.distro if image and image.distro in known_distros() else DEFAULT_DISTRO
    try:
        return load_rules(distro)
    except RulesError as error:
        raise InputError(str(error)) from error


def _known_profile(reference: str) -> BaseProfile | None:
    try:
        return load_profile(reference)
    except RulesError:
        return None  # an image we carry no profile of: the distro's base packages are assumed


def _open_base_image(options: ScanOptions) -> BaseImage | None:
    if options.rootfs is not None:
        return open_rootfs(options.rootfs.resolve(), options.env)
    if options.image is not None:
        try:
            cache_dir = (options.cache_dir or default_cache_dir()) if options.use_cache else None
            return open_image(options.image.resolve(), options.env, cache_dir)
        except ImageFormatError as error:
            raise InputError(str(error)) from error
    return None


def _profile(reference: str | None) -> BaseProfile | None:
    if reference is None:
        return None
    try:
        return load_profile(reference)
    except RulesError as error:
        raise InputError(str(error)) from error
