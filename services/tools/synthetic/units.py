"""Where synthetic subjects live and which agency units record their events.

The seven Swedish police regions, a few towns in each, and the units an event from that
town would come from: the police region, the prosecution office, Kriminalvården's
remand prison and probation office, the municipal social services and regional psychiatry.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

REGIONS = ("nord", "mitt", "stockholm", "ost", "vast", "syd", "bergslagen")

_POLICE_REGION_NAME = {
    "nord": "Nord",
    "mitt": "Mitt",
    "stockholm": "Stockholm",
    "ost": "Öst",
    "vast": "Väst",
    "syd": "Syd",
    "bergslagen": "Bergslagen",
}


@dataclass(frozen=True, slots=True)
class Town:
    name: str
    region: str
    health_region: str
    weight: int  # relative share of subjects, roughly by population

    @functools.cache  # noqa: B019 - towns are a fixed set of module constants, so the cache stays small
    def unit(self, agency: str) -> str:
        """The unit that records an agency's events about someone living here."""
        return {
            "police": self.police,
            "prosecution": self.prosecution,
            "prison_probation": self.probation,
            "social_services": self.social_services,
            "healthcare": self.psychiatry,
        }[agency]

    @property
    def police(self) -> str:
        return f"Polisen Region {_POLICE_REGION_NAME[self.region]}, lokalpolisområde {self.name}"

    @property
    def prosecution(self) -> str:
        return f"Åklagarmyndigheten, åklagarkammaren i {self.name}"

    @property
    def remand_prison(self) -> str:
        return f"Häktet {self.name}"

    @property
    def remand_prison_unit(self) -> str:
        return f"Kriminalvården {self.remand_prison}"

    @property
    def probation(self) -> str:
        return f"Kriminalvården Frivård {self.name}"

    @property
    def social_services(self) -> str:
        return f"Socialtjänsten {self.name} kommun"

    @property
    def psychiatry(self) -> str:
        return f"{self.health_region} Vuxenpsykiatri {self.name}"

    @property
    def emergency_care(self) -> str:
        return f"{self.health_region} Akutmottagningen {self.name}"

    @property
    def addiction_care(self) -> str:
        return f"{self.health_region} Beroendevård {self.name}"


TOWNS: tuple[Town, ...] = (
    Town("Umeå", "nord", "Region Västerbotten", 3),
    Town("Luleå", "nord", "Region Norrbotten", 2),
    Town("Skellefteå", "nord", "Region Västerbotten", 1),
    Town("Uppsala", "mitt", "Region Uppsala", 5),
    Town("Gävle", "mitt", "Region Gävleborg", 3),
    Town("Sundsvall", "mitt", "Region Västernorrland", 2),
    Town("Västerås", "mitt", "Region Västmanland", 3),
    Town("Östersund", "mitt", "Region Jämtland Härjedalen", 1),
    Town("Stockholm", "stockholm", "Region Stockholm", 20),
    Town("Södertälje", "stockholm", "Region Stockholm", 3),
    Town("Huddinge", "stockholm", "Region Stockholm", 3),
    Town("Norrtälje", "stockholm", "Region Stockholm", 1),
    Town("Linköping", "ost", "Region Östergötland", 4),
    Town("Norrköping", "ost", "Region Östergötland", 3),
    Town("Jönköping", "ost", "Region Jönköpings län", 3),
    Town("Eskilstuna", "ost", "Region Sörmland", 2),
    Town("Göteborg", "vast", "Västra Götalandsregionen", 14),
    Town("Borås", "vast", "Västra Götalandsregionen", 3),
    Town("Trollhättan", "vast", "Västra Götalandsregionen", 2),
    Town("Halmstad", "vast", "Region Halland", 2),
    Town("Malmö", "syd", "Region Skåne", 8),
    Town("Helsingborg", "syd", "Region Skåne", 3),
    Town("Kristianstad", "syd", "Region Skåne", 2),
    Town("Växjö", "syd", "Region Kronoberg", 2),
    Town("Kalmar", "syd", "Region Kalmar län", 2),
    Town("Örebro", "bergslagen", "Region Örebro län", 4),
    Town("Karlstad", "bergslagen", "Region Värmland", 3),
    Town("Falun", "bergslagen", "Region Dalarna", 2),
)

TOWN_WEIGHTS: tuple[int, ...] = tuple(town.weight for town in TOWNS)


@dataclass(frozen=True, slots=True)
class Prison:
    """A Kriminalvården prison (anstalt) and the police region it lies in."""

    name: str
    region: str

    @property
    def unit(self) -> str:
        return f"Kriminalvården {self.name}"


PRISONS: tuple[Prison, ...] = (
    Prison("Anstalten Kumla", "bergslagen"),
    Prison("Anstalten Österåker", "stockholm"),
    Prison("Anstalten Hall", "stockholm"),
    Prison("Anstalten Skogome", "vast"),
    Prison("Anstalten Tidaholm", "vast"),
    Prison("Anstalten Ystad", "syd"),
    Prison("Anstalten Kristianstad", "syd"),
    Prison("Anstalten Skänninge", "ost"),
    Prison("Anstalten Saltvik", "mitt"),
    Prison("Anstalten Haparanda", "nord"),
)

PROGRAMMES = ("Predov", "IDAP")
