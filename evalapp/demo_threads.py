"""The demo's conversation threads (evalapp.demo_script): what a customer asks, step by step, and what a correct
answer says — every figure in it taken from the thread's help-center article — with, where it has one, the same
answer with a figure the article contradicts (a planted wrong fact)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    user: str
    answer: str
    wrong: str = ""  # the same answer with a figure the article contradicts ("" if it states none)


@dataclass(frozen=True)
class Thread:
    intent: str
    article: tuple[str, str]  # (source, text): everything a correct answer says is in it
    steps: tuple[Step, ...]  # the opening question first; at least demo_script.MAX_TURNS - 1, so a conversation never runs out
    tool: str | None = None


THREADS = [
    Thread(
        "order_status",
        ("help/orders/tracking", "Orders ship within 1-2 business days of payment and UPS delivers in 2-4 business "
         "days; tracking is emailed on dispatch. A parcel marked delivered but missing can be reported after 48 "
         "hours, and we send a free replacement."),
        (
            Step("Where is my order #{order}?",
                 "Order #{order} has shipped with UPS and should reach you within 2-4 business days; the tracking "
                 "link is in your email.",
                 "Order #{order} has shipped with UPS and should reach you within 24 hours."),
            Step("The tracking says delivered but there's nothing here.",
                 "Sorry about that! Parcels sometimes turn up a day late. If it's still missing after 48 hours, "
                 "tell me and I'll send a free replacement.",
                 "Sorry about that! If it's still missing after 7 days, tell me and I'll look into a replacement."),
            Step("It's been two days now and still nothing.",
                 "I've sent a free replacement of order #{order} by UPS; the tracking email is on its way."),
            Step("Will I be charged for the replacement?", "No, the replacement is free."),
            Step("And if the first parcel turns up after all?",
                 "Keep it or send it back with the free return label, whichever you prefer."),
        ),
        tool="lookup_order",
    ),
    Thread(
        "return_item",
        ("help/returns/policy", "Returns are free within 30 days of delivery: print the label under Orders > Return "
         "item and drop the parcel at any UPS point. Refunds reach your card 5-10 business days after the return "
         "arrives. Sale items are returned for store credit, which never expires."),
        (
            Step("How do I return the {product} I bought last week?",
                 "Returns are free within 30 days: print the label under Orders > Return item and drop the parcel "
                 "at any UPS point.",
                 "Returns are free within 14 days: print the label under Orders > Return item and drop it at UPS."),
            Step("How long until I get my money back?",
                 "Refunds reach your card 5-10 business days after the return arrives.",
                 "Refunds reach your card within 2 business days of your drop-off."),
            Step("It was on sale, is that a problem?",
                 "Sale items can be returned too, for store credit rather than a refund to your card."),
            Step("Does the store credit expire?", "No, store credit never expires."),
            Step("Do I need the original box?", "No, any sturdy packaging will do."),
        ),
    ),
    Thread(
        "damaged_item",
        ("help/returns/damaged", "An item that arrives damaged is refunded in full, shipping included, and need not "
         "be sent back. Refunds reach your card in 5-10 business days; a replacement ships the same day instead if "
         "the customer prefers."),
        (
            Step("The {product} from order #{order} arrived broken.",
                 "Sorry about that! I've refunded order #{order} in full, shipping included; it reaches your card "
                 "in 5-10 business days.",
                 "Sorry about that! I've refunded order #{order}; it reaches your card within 24 hours."),
            Step("Do I need to send the broken one back?", "No need to send it back; please recycle it."),
            Step("Actually, can I get a new one instead of the refund?",
                 "Of course: I've switched it to a replacement, which ships today."),
            Step("Will it be the same colour?", "Yes, the same colour and size as your original order."),
            Step("When will the new one arrive?", "It ships today with UPS; the tracking email follows."),
        ),
        tool="issue_refund",
    ),
    Thread(
        "shipping_abroad",
        ("help/shipping/international", "We ship to the US, Canada and the EU. Standard shipping to Canada takes "
         "4-7 business days, duties included at checkout. Express (1-2 business days) costs $12 and is free on "
         "orders over $150. Tracking works all the way to the door."),
        (
            Step("Do you ship to Canada?",
                 "Yes: standard shipping to Canada takes 4-7 business days, with duties included at checkout.",
                 "Yes: standard shipping to Canada takes about 3 weeks, and duties are paid on delivery."),
            Step("Is there a faster option?", "Express takes 1-2 business days and costs $12.",
                 "Express takes 1-2 business days and costs $25."),
            Step("Is express free above some amount?", "Yes, express is free on orders over $150.",
                 "Yes, express is free on orders over $50."),
            Step("Can I track the parcel the whole way?", "Yes, the tracking link works until it reaches your door."),
            Step("Do you ship to Mexico too?", "Not yet: we ship to the US, Canada and the EU only."),
        ),
    ),
    Thread(
        "password_reset",
        ("help/account/password", "Password reset emails arrive within 10 minutes and sometimes land in spam; reset "
         "links expire after 24 hours. If no email arrives, support can verify the customer and send a one-time "
         "login code by text."),
        (
            Step("I can't log in, the reset email never arrives.",
                 "Reset emails can take up to 10 minutes and sometimes land in spam; I've just sent a fresh one.",
                 "Reset emails can take up to 2 hours, so please wait and try again later."),
            Step("Still nothing, and I checked spam too.",
                 "Then let's skip the email: I've verified you and sent a one-time login code by text."),
            Step("Got the code, I'm in.", "Great! Please set a new password under Account > Security."),
            Step("Will my saved addresses still be there?", "Yes, nothing else on your account has changed."),
            Step("How long is a reset link good for, for next time?", "Reset links expire after 24 hours.",
                 "Reset links expire after 1 hour."),
        ),
    ),
    Thread(
        "stock_check",
        ("help/products/stock", "Stock updates every hour. Sold-out sizes usually come back within 2-3 weeks; "
         "'Notify me' on the product page emails the customer when they do. Every product has a 2-year warranty."),
        (
            Step("Is the {product} in stock in size {size}?",
                 "Size {size} of the {product} is sold out right now; sold-out sizes usually come back within 2-3 "
                 "weeks.",
                 "Size {size} of the {product} is sold out right now, but it's back within 48 hours."),
            Step("Can you let me know when it's back?",
                 "Done: you'll get an email the moment size {size} is back."),
            Step("Is there anything similar in stock now?",
                 "Last season's model is very similar and in stock in size {size}."),
            Step("Does it come with a warranty?", "Yes, every product has a 2-year warranty.",
                 "Yes, every product has a 5-year warranty."),
            Step("How often is the stock on the website updated?", "Stock updates every hour.",
                 "Stock updates every 6 hours."),
        ),
        tool="check_stock",
    ),
    Thread(
        "change_address",
        ("help/orders/changes", "An order's delivery address can be changed until it ships, usually 1-2 business "
         "days after payment. After that, UPS can redirect the parcel for a $5 fee."),
        (
            Step("Can I change the delivery address on order #{order}?",
                 "Yes: order #{order} hasn't shipped yet, so I can still change it. Where should it go?"),
            Step("Send it to my office instead, the address on my last order.",
                 "Done: order #{order} now goes to the office address from your last order."),
            Step("And if it had already shipped?", "Then UPS can redirect the parcel for a $5 fee.",
                 "Then UPS can redirect the parcel for a $20 fee."),
            Step("When will it arrive?", "It ships 1-2 business days after payment; tracking is emailed then.",
                 "It ships 3-5 business days after payment; tracking is emailed then."),
            Step("Will I get a new tracking link?", "Yes, tracking is emailed when it ships, to the same address."),
        ),
        tool="lookup_order",
    ),
    Thread(
        "card_declined",
        ("help/payments/declined", "A declined card is refused by the customer's bank, most often because the billing "
         "address doesn't match. A declined card is never charged. PayPal works as well."),
        (
            Step("Why was my card declined at checkout?",
                 "Declines come from your bank, most often because the billing address doesn't match the card's. "
                 "You can also pay with PayPal."),
            Step("Was I charged anyway?", "No: a declined card is never charged, so nothing was taken."),
            Step("The address matches, I checked.",
                 "Then your bank declined it for another reason: they can tell you why, or you can use PayPal."),
            Step("OK, I'll try PayPal.", "Great, your basket is saved, so it only takes a minute."),
            Step("Will my bank see two attempts?", "Only the declined attempt; it was never charged."),
        ),
    ),
]
