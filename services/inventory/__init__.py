"""The inventory service: the catalogue, stock levels and the reservation of stock for orders."""
