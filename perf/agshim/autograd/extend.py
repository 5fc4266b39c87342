"""``autograd.extend``: ``primitive`` with ``defvjp``/``defjvp`` rules, as
jitgrad ``custom_vjp``/``custom_jvp`` functions.

jitgrad traces a primitive's body, so it must be NumPy code jitgrad can trace
(autograd's own primitives may call anything).  autograd's rule makers have
the signatures ``vjpmaker(ans, *args) -> (g -> cotangent)`` and
``jvpmaker(g, ans, *args) -> tangent``, one per argument.
"""
import jitgrad


class _Primitive:
    def __init__(self, fun):
        self.fun = fun
        self.vjps, self.jvps = {}, {}
        self.__name__ = getattr(fun, "__name__", "primitive")

    def __call__(self, *args, **kwargs):
        if not self.vjps and not self.jvps:
            return self.fun(*args, **kwargs)
        f = lambda *a: self.fun(*a, **kwargs)  # noqa: E731
        n = len(args)
        if self.jvps:
            wrapped = jitgrad.custom_jvp(f)

            @wrapped.defjvp
            def rule(primals, tangents):
                ans = f(*primals)
                out = None
                for i in range(n):
                    if i not in self.jvps:
                        raise NotImplementedError(f"{self.__name__}: no JVP for argument {i}")
                    t = self.jvps[i](tangents[i], ans, *primals, **kwargs)
                    out = t if out is None else out + t
                return ans, out
        else:
            wrapped = jitgrad.custom_vjp(f)

            def fwd(*a):
                ans = f(*a)
                return ans, (ans, a)

            def bwd(res, g):
                ans, a = res
                cts = []
                for i in range(n):
                    if i not in self.vjps:
                        raise NotImplementedError(f"{self.__name__}: no VJP for argument {i}")
                    cts.append(self.vjps[i](ans, *a, **kwargs)(g))
                return tuple(cts)
            wrapped.defvjp(fwd, bwd)
        return wrapped(*args)


def primitive(fun):
    return _Primitive(fun)


def defvjp(prim, *makers, argnums=None):
    for i, m in zip(argnums or range(len(makers)), makers):
        if m is not None:
            prim.vjps[i] = m


def defjvp(prim, *makers, argnums=None):
    for i, m in zip(argnums or range(len(makers)), makers):
        if m is not None:
            prim.jvps[i] = m
