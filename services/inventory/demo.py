"""The demo catalogue added at start (SEED_DEMO_CATALOGUE), so a fresh stack has products.

Seeding is idempotent by sku: a product that exists, edited or not, is left as it is.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from services.inventory import repository as repo
from services.inventory.domain import NewProduct
from services.kit.db import Pool

log = logging.getLogger(__name__)
SEED_ACTOR = "system:demo-catalogue"

DEMO_CATALOGUE = (
    NewProduct(
        sku="DEMO-MUG-001",
        name="Enamel camping mug",
        description="350 ml enamel mug, white with a blue rim.",
        price=Decimal("12.50"),
        currency="USD",
        initial_stock=500,
    ),
    NewProduct(
        sku="DEMO-TEE-M",
        name="Organic cotton T-shirt (M)",
        description="Heavyweight organic cotton, charcoal.",
        price=Decimal("24.00"),
        currency="USD",
        initial_stock=400,
    ),
    NewProduct(
        sku="DEMO-TEE-L",
        name="Organic cotton T-shirt (L)",
        description="Heavyweight organic cotton, charcoal.",
        price=Decimal("24.00"),
        currency="USD",
        initial_stock=400,
    ),
    NewProduct(
        sku="DEMO-BOTTLE-750",
        name="Insulated water bottle",
        description="750 ml stainless steel, keeps drinks cold for 24 hours.",
        price=Decimal("29.90"),
        currency="USD",
        initial_stock=300,
    ),
    NewProduct(
        sku="DEMO-NOTEBOOK-A5",
        name="Dot grid notebook A5",
        description="192 pages, 100 g/m² paper, lay-flat binding.",
        price=Decimal("14.00"),
        currency="USD",
        initial_stock=800,
    ),
    NewProduct(
        sku="DEMO-PEN-GEL",
        name="Gel pen, pack of 5",
        description="0.5 mm black gel ink.",
        price=Decimal("6.75"),
        currency="USD",
        initial_stock=1000,
    ),
    NewProduct(
        sku="DEMO-BACKPACK-20",
        name="Daypack 20 L",
        description="Water-resistant daypack with a padded laptop sleeve.",
        price=Decimal("79.00"),
        currency="USD",
        initial_stock=120,
    ),
    NewProduct(
        sku="DEMO-HEADPHONES",
        name="Wireless headphones",
        description="Over-ear, noise cancelling, 30 hours of battery.",
        price=Decimal("149.00"),
        currency="USD",
        initial_stock=60,
    ),
    NewProduct(
        sku="DEMO-CABLE-USBC",
        name="USB-C cable 1 m",
        description="Braided, 60 W charging.",
        price=Decimal("9.99"),
        currency="USD",
        initial_stock=900,
    ),
    NewProduct(
        sku="DEMO-LAMP-DESK",
        name="LED desk lamp",
        description="Dimmable, three colour temperatures.",
        price=Decimal("39.50"),
        currency="USD",
        initial_stock=150,
    ),
)


async def seed_demo_catalogue(pool: Pool) -> int:
    """Add the demo products that are missing; returns how many were added."""
    added = 0
    async with pool.connection() as conn, conn.transaction():
        for product in DEMO_CATALOGUE:
            product_id = await repo.insert_product(conn, product)
            if product_id is not None:
                await repo.add_adjustment(
                    conn, product_id, 0, product.initial_stock, "demo catalogue", SEED_ACTOR, ""
                )
                added += 1
    if added:
        log.info("demo catalogue seeded", extra={"products": added})
    return added
