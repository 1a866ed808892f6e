"""SVG badges through a strict allow-list, rebuilt on lxml (a maintained parser).

The upload is parsed without DTDs, entities, network access or huge-tree mode, and a new document
is built from it holding only what is listed below: static SVG elements (shapes, text, paint
servers, clipping, masking, filters), their presentation attributes, links that point inside the
image (``#id``) and CSS with no outside reference. What is stored and served is that rebuilt
document, never the uploaded bytes, so a trick the checks did not foresee (an encoded
``javascript:``, an animation that rewrites a link) has nowhere to live: it is not on the list.

Refused with ``422 unsafe_svg`` (the uploader learns why): script-capable or active SVG
elements (``script``, ``foreignObject``, ``animate``/``set``, ``image``, ``iframe``…), event handler
attributes, links or ``url(...)`` references to anything but an element of the image, and CSS
with ``@import``, escapes or expressions. Dropped silently: elements and attributes of other
namespaces (editor metadata such as Inkscape's), comments, processing instructions and unknown
plain attributes.
"""

from __future__ import annotations

import re

from lxml import etree

from questline.kit.errors import Unprocessable

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
XML_NS = "http://www.w3.org/XML/1998/namespace"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


ELEMENTS = _words("""
svg g defs title desc metadata symbol use a switch path rect circle ellipse line polyline polygon text tspan
textPath linearGradient radialGradient stop clipPath mask pattern marker style filter feBlend feColorMatrix
feComponentTransfer feComposite feConvolveMatrix feDiffuseLighting feDisplacementMap feDistantLight
feDropShadow feFlood feFuncA feFuncB feFuncG feFuncR feGaussianBlur feMerge feMergeNode feMorphology
feOffset fePointLight feSpecularLighting feSpotLight feTile feTurbulence
""")
# Kept empty: what they hold is editor data (RDF), never drawn.
EMPTIED = frozenset({"metadata"})
ATTRIBUTES = _words("""
id class style transform x y width height rx ry cx cy r fx fy fr x1 y1 x2 y2 points d pathLength viewBox
preserveAspectRatio version baseProfile fill fill-opacity fill-rule stroke stroke-width stroke-linecap
stroke-linejoin stroke-miterlimit stroke-dasharray stroke-dashoffset stroke-opacity opacity color display
visibility overflow clip-path clip-rule clipPathUnits mask maskUnits maskContentUnits filter filterUnits
primitiveUnits gradientUnits gradientTransform spreadMethod offset stop-color stop-opacity patternUnits
patternContentUnits patternTransform markerWidth markerHeight markerUnits refX refY orient marker-start
marker-mid marker-end font-family font-size font-weight font-style font-variant font-stretch text-anchor
dominant-baseline alignment-baseline baseline-shift letter-spacing word-spacing text-decoration
writing-mode dx dy rotate textLength lengthAdjust startOffset method spacing side in in2 result
stdDeviation mode operator k1 k2 k3 k4 values type tableValues slope intercept amplitude exponent
flood-color flood-opacity lighting-color scale xChannelSelector yChannelSelector baseFrequency numOctaves
seed stitchTiles radius azimuth elevation surfaceScale specularConstant specularExponent diffuseConstant
kernelMatrix kernelUnitLength order divisor bias targetX targetY edgeMode preserveAlpha pointsAtX
pointsAtY pointsAtZ limitingConeAngle z vector-effect shape-rendering image-rendering text-rendering
color-interpolation color-interpolation-filters paint-order mix-blend-mode isolation enable-background
requiredFeatures systemLanguage media lang href
""")
LINK_ATTRIBUTES = frozenset({"href", f"{{{XLINK_NS}}}href"})
XML_ATTRIBUTES = frozenset({f"{{{XML_NS}}}space", f"{{{XML_NS}}}lang"})
_LOCAL_REF = re.compile(r"^#[A-Za-z_][\w.:-]*$")
# Browsers drop ASCII whitespace and control characters inside URLs and CSS: judge values without them.
_IGNORED = re.compile(r"[\x00-\x20\x7f]+")
_CSS_URL = re.compile(r"url\(\s*(['\"]?)(.*?)\1\s*\)", re.IGNORECASE | re.DOTALL)
_CSS_FORBIDDEN = ("@import", "expression(", "javascript:", "vbscript:", "behavior:", "-moz-binding", "\\", "<")
_PARSER_OPTIONS = {"resolve_entities": False, "no_network": True, "load_dtd": False, "dtd_validation": False,
                   "huge_tree": False, "remove_comments": True, "remove_pis": True, "strip_cdata": True}


def unsafe(reason: str) -> Unprocessable:
    return Unprocessable(f"SVG badges may not contain {reason}", code="unsafe_svg")


def invalid(reason: str) -> Unprocessable:
    return Unprocessable(reason, code="invalid_svg")


def parse(text: str) -> etree._Element:
    """The document's root (``invalid_svg`` when it is not well-formed; ``unsafe_svg`` with a DTD)."""
    upper = text.upper()
    if "<!DOCTYPE" in upper or "<!ENTITY" in upper:
        raise unsafe("DOCTYPE or entity declarations")
    parser = etree.XMLParser(**_PARSER_OPTIONS)  # type: ignore[call-overload]
    try:
        root: etree._Element = etree.fromstring(text.encode("utf-8"), parser)
    except etree.XMLSyntaxError as exc:
        raise invalid(f"the SVG is not well-formed XML: {exc}") from exc
    if root.getroottree().docinfo.doctype:
        raise unsafe("DOCTYPE or entity declarations")
    return root


def sanitize(root: etree._Element) -> bytes:
    """The badge rebuilt from the allow-list, as UTF-8 bytes; raises ``unsafe_svg`` on an active part."""
    clean = _copy(root)
    assert clean is not None  # the root is <svg>, checked by the caller
    return bytes(etree.tostring(clean, xml_declaration=True, encoding="UTF-8"))


def name_of(element: etree._Element) -> tuple[str | None, str]:
    qname = etree.QName(element)
    return qname.namespace, qname.localname


def _copy(element: etree._Element) -> etree._Element | None:
    namespace, tag = name_of(element)
    if namespace not in (SVG_NS, None):
        return None  # another vocabulary's element (editor metadata): not drawn, not kept
    if tag not in ELEMENTS:
        raise unsafe(f"<{tag}> elements")
    out = etree.Element(f"{{{SVG_NS}}}{tag}", nsmap={None: SVG_NS} if tag == "svg" else None)
    for attribute, value in element.attrib.items():
        kept = _attribute(tag, str(attribute), str(value))
        if kept is not None:
            out.set(*kept)
    if tag in EMPTIED:
        return out
    if tag == "style":
        out.text = _css(element.text or "")
        return out
    out.text = element.text
    for child in element:
        if not isinstance(child.tag, str):
            continue
        copied = _copy(child)
        if copied is not None:
            copied.tail = child.tail
            out.append(copied)
    return out


def _attribute(tag: str, name: str, value: str) -> tuple[str, str] | None:
    local = etree.QName(name).localname if name.startswith("{") else name
    if local.lower().startswith("on"):
        raise unsafe(f"event handler attributes ({local} on <{tag}>)")
    if name in LINK_ATTRIBUTES:
        if not _LOCAL_REF.match(_IGNORED.sub("", value)):
            raise unsafe(f"links outside the image ({local} on <{tag}>); only #id references are allowed")
        return "href", _IGNORED.sub("", value)
    if name in XML_ATTRIBUTES:
        return name, value
    if name.startswith("{") or name not in ATTRIBUTES:
        return None  # another namespace's attribute, or one no renderer acts on
    if name == "style":
        return name, _css(value)
    _check_urls(value, f"{name} on <{tag}>")
    return name, value


def _check_urls(value: str, where: str) -> None:
    squeezed = _IGNORED.sub("", value).lower()
    if "javascript:" in squeezed or "vbscript:" in squeezed:
        raise unsafe(f"script URLs (in {where})")
    for match in _CSS_URL.finditer(value):
        if not _LOCAL_REF.match(_IGNORED.sub("", match.group(2))):
            raise unsafe(f"references outside the image (url(...) in {where}); only url(#id) is allowed")
    if "url(" in squeezed and not _CSS_URL.search(value):
        raise unsafe(f"a malformed url(...) (in {where})")


def _css(text: str) -> str:
    squeezed = _IGNORED.sub("", text).lower()
    for forbidden in _CSS_FORBIDDEN:
        if forbidden in squeezed:
            raise unsafe(f"CSS with {forbidden!r}")
    _check_urls(text, "CSS")
    return text
