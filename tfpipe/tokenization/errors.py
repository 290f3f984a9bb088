"""Build-time errors: a tokenizer tfpipe cannot reproduce exactly must never build."""


class UnsupportedComponentError(ValueError):
    """A tokenizer.json section uses a component (or option) tfpipe does not compile."""

    def __init__(self, section: str, component: object, detail: str = "") -> None:
        self.section = section
        self.component = component
        message = f"tfpipe cannot compile {section} component {component!r}"
        super().__init__(f"{message}: {detail}" if detail else message)
