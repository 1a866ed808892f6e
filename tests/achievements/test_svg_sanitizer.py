"""Issue 10, point 16: SVG badges go through a strict allow-list (lxml): tricks that slipped past
the old checks are refused, and what is stored and served is the rebuilt document."""

from __future__ import annotations

import base64

import httpx
import pytest

from questline.achievements import svg
from questline.kit.errors import ProblemError
from questline.kit.runtime import Runtime
from tests.achievements.test_badges import setup, upload
from tests.conftest import Factory, problem

NS = 'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
INNER = base64.b64encode(b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>').decode()
# The audit's four tricks (an entity-encoded tab in javascript:, a link rewritten by an animation,
# a nested document by data: URL, CSS that loads from outside) and more of their kind.
HOSTILE = [
    f'<svg {NS}><a href="jav&#x09;ascript:alert(1)"><rect width="9" height="9"/></a></svg>',
    f'<svg {NS}><a xlink:href="&#x20;java&#x0A;script:alert(1)"><text>x</text></a></svg>',
    f'<svg {NS}><a href="#x"><set attributeName="href" to="javascript:alert(1)"/><rect/></a></svg>',
    f'<svg {NS}><a><animate attributeName="href" values="javascript:alert(1)"/><rect/></a></svg>',
    f'<svg {NS}><use href="data:image/svg+xml;base64,{INNER}#x"/></svg>',
    f'<svg {NS}><image href="https://tracker.example/p.png"/></svg>',
    f'<svg {NS}><style>@import url(https://evil.example/x.css);</style></svg>',
    f'<svg {NS}><style>@im\\70 ort "x.css";</style></svg>',
    f'<svg {NS}><rect fill="url(javascript:alert(1))"/></svg>',
    f'<svg {NS}><rect style="background:url(https://evil.example/t.png)"/></svg>',
    f'<svg {NS}><rect fill="url( &quot;https://evil.example/#g&quot; )"/></svg>',
    f'<svg {NS}><SCRIPT>alert(1)</SCRIPT></svg>',
    f'<svg {NS}><g ONLOAD="alert(1)"/></svg>',
    f'<svg {NS}><handler type="application/ecmascript">alert(1)</handler></svg>',
    f'<svg {NS}><iframe src="javascript:alert(1)"/></svg>',
    f'<svg {NS}><feImage href="https://evil.example/"/></svg>',
]


@pytest.mark.parametrize("document", HOSTILE)
def test_hostile_svgs_are_refused(document: str) -> None:
    with pytest.raises(ProblemError) as caught:
        svg.sanitize(svg.parse(document))
    assert caught.value.code == "unsafe_svg", caught.value.detail


def test_what_is_kept_is_rebuilt_from_the_allow_list() -> None:
    document = (f'<svg {NS} xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" '
                'xmlns:h="http://www.w3.org/1999/xhtml" width="64" height="64" data-x="1" inkscape:version="1">'
                '<!-- a comment --><?pi x?><metadata><rdf xmlns="urn:rdf">who</rdf></metadata>'
                '<h:script>alert(1)</h:script><inkscape:grid/>'
                '<defs><linearGradient id="g"><stop offset="0" stop-color="gold"/></linearGradient></defs>'
                '<style>.a { fill: url(#g) }</style>'
                '<a xlink:href="#g"><circle class="a" cx="32" cy="32" r="30" fill="url(#g)"/></a>'
                '<text x="2" y="60">&lt;b&gt;Hi</text></svg>')
    clean = svg.sanitize(svg.parse(document)).decode()
    for gone in ("script", "alert", "inkscape", "data-x", "comment", "<?pi", "who", "xhtml"):
        assert gone not in clean, (gone, clean)
    for kept in ('<circle class="a" cx="32" cy="32" r="30" fill="url(#g)"/>', '<a href="#g">',
                 ".a { fill: url(#g) }", "&lt;b&gt;Hi", '<stop offset="0" stop-color="gold"/>'):
        assert kept in clean, (kept, clean)
    # The rebuilt document is itself clean: sanitizing it again changes nothing.
    assert svg.sanitize(svg.parse(clean)).decode() == clean


async def test_uploads_are_refused_or_served_rebuilt(client: httpx.AsyncClient, factory: Factory,
                                                     runtime: Runtime) -> None:
    keys = await factory.app()
    await setup(client, keys)
    for document in HOSTILE[:4]:
        problem(await upload(client, keys.server, document.encode(), "x.svg", content_type="image/svg+xml"), 422,
                "unsafe_svg")
    drawing = (f'<svg {NS} xmlns:h="http://www.w3.org/1999/xhtml" width="8" height="8">'
               '<h:iframe src="javascript:alert(1)"/><rect width="8" height="8" fill="red"/></svg>')
    resp = await upload(client, keys.server, drawing.encode(), "x.svg", content_type="image/svg+xml")
    assert resp.status_code == 201, resp.text
    served = await client.get(resp.json()["url"])
    assert served.status_code == 200 and b"iframe" not in served.content and b"javascript" not in served.content
    assert b'<rect width="8" height="8" fill="red"/>' in served.content
    assert "sandbox" in served.headers["content-security-policy"]
