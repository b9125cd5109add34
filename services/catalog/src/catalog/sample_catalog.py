"""A deterministic sample catalog for local stacks and demos: 26 product lines, 2 variants each.

SKUs are `FLEET-0001`, `FLEET-0002`, ... in the order below, so the same run always yields the
same rows and re-seeding can skip what exists.
"""

from __future__ import annotations

from typing import Any

SAMPLE_STOCK = 100

# (product line, description, ((variant, price in cents), (variant, price in cents)))
_LINES: tuple[tuple[str, str, tuple[tuple[str, int], tuple[str, int]]], ...] = (
    (
        "Insulated Water Bottle",
        "Double-walled stainless steel; keeps drinks cold for 24 hours.",
        (("500 ml", 2490), ("1 l", 3290)),
    ),
    (
        "Trail Running Shoes",
        "Grippy lugged outsole and a breathable mesh upper for rough paths.",
        (("Graphite", 11900), ("Ember", 11900)),
    ),
    (
        "Merino Wool Socks",
        "Cushioned, odour-resistant socks for long days on foot.",
        (("2-pack", 2200), ("4-pack", 3900)),
    ),
    (
        "Ultralight Tent",
        "Freestanding three-season tent with two doors and two vestibules.",
        (("1-person", 28900), ("2-person", 34900)),
    ),
    (
        "Down Sleeping Bag",
        "800-fill responsibly sourced down in a water-resistant shell.",
        (("Regular", 31900), ("Long", 33900)),
    ),
    (
        "Headlamp",
        "Rechargeable, 400 lumens, with a red night-vision mode.",
        (("Black", 3990), ("Orange", 3990)),
    ),
    (
        "Camp Stove",
        "Compact canister stove that boils a litre in under four minutes.",
        (("Standard", 5490), ("With piezo igniter", 6490)),
    ),
    (
        "Titanium Mug",
        "Single-wall titanium mug with folding handles; goes on the stove.",
        (("350 ml", 2990), ("450 ml", 3490)),
    ),
    (
        "Rain Jacket",
        "Waterproof, breathable three-layer shell with pit zips.",
        (("Men's", 17900), ("Women's", 17900)),
    ),
    (
        "Fleece Pullover",
        "Recycled-polyester grid fleece for warmth without bulk.",
        (("Navy", 6900), ("Moss", 6900)),
    ),
    (
        "Daypack",
        "Lightweight pack with a hydration sleeve and hip-belt pockets.",
        (("20 l", 7900), ("28 l", 8900)),
    ),
    (
        "Trekking Poles",
        "Aluminium poles with cork grips and quick flick-locks.",
        (("Pair", 8900), ("Carbon pair", 14900)),
    ),
    (
        "Camp Chair",
        "Packable chair that sets up in seconds and holds 120 kg.",
        (("Compact", 7490), ("High-back", 9490)),
    ),
    (
        "Sleeping Pad",
        "Insulated inflatable pad, R-value 4.2, with a pump sack.",
        (("Regular", 12900), ("Wide", 14900)),
    ),
    (
        "Water Filter",
        "Hollow-fibre filter that removes 99.9999% of bacteria.",
        (("Squeeze", 3490), ("Gravity 4 l", 8990)),
    ),
    (
        "First Aid Kit",
        "Organised kit for one to four people on trips of up to four days.",
        (("Day hiker", 2490), ("Expedition", 5990)),
    ),
    (
        "Compass",
        "Baseplate compass with declination adjustment and a sighting mirror.",
        (("Baseplate", 2990), ("Mirror sighting", 4990)),
    ),
    (
        "Solar Charger",
        "Foldable panel with USB-C output for phones and headlamps.",
        (("10 W", 5990), ("21 W", 8990)),
    ),
    (
        "Power Bank",
        "Rugged, water-resistant battery with pass-through charging.",
        (("10,000 mAh", 3990), ("20,000 mAh", 5990)),
    ),
    (
        "Dry Bag",
        "Roll-top bag of welded ripstop that keeps gear dry in a downpour.",
        (("10 l", 1990), ("20 l", 2490)),
    ),
    (
        "Camping Hammock",
        "Parachute-nylon hammock with tree-friendly straps.",
        (("Single", 4990), ("Double", 6490)),
    ),
    (
        "Cookware Set",
        "Nesting hard-anodised pot, pan and lids for two.",
        (("2-person", 5990), ("4-person", 7990)),
    ),
    (
        "Beanie",
        "Rib-knit merino beanie that stays warm when damp.",
        (("Charcoal", 2990), ("Rust", 2990)),
    ),
    (
        "Softshell Trousers",
        "Stretchy, wind-resistant trousers with articulated knees.",
        (("Regular leg", 9900), ("Long leg", 9900)),
    ),
    (
        "Binoculars",
        "Roof-prism binoculars, waterproof and fog-proof.",
        (("8x32", 18900), ("10x42", 24900)),
    ),
    (
        "Bear Canister",
        "Hard-sided food container approved for bear country.",
        (("Standard", 7990), ("Expedition", 9990)),
    ),
)


def sample_products() -> list[dict[str, Any]]:
    """The sample rows, ready for an INSERT; deterministic across runs."""
    rows: list[dict[str, Any]] = []
    for line, description, variants in _LINES:
        for variant, price_cents in variants:
            rows.append(
                {
                    "sku": f"FLEET-{len(rows) + 1:04d}",
                    "name": f"{line} ({variant})",
                    "description": description,
                    "price_cents": price_cents,
                    "currency": "EUR",
                    "stock": SAMPLE_STOCK,
                }
            )
    return rows
