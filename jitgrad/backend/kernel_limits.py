"""The range of the vectorised sin/cos kernels (:mod:`jitgrad.backend.vecmath`),
in a module of its own: the code generator needs the number, not the kernels
(importing them imports Numba)."""

# For |x| <= TRIG_LIMIT the quadrant k = round(x*2/pi) is below 1.0014e6 < 2^20,
# which keeps k*PIO2_{1,2,3} exact.  By the continued-fraction expansion of
# pi/2 (best approximations k*pi/2 ~ m*2^-j), no double of that range lies
# closer than 2^-60.4 to a nonzero multiple of pi/2, and the reduction in
# vecmath returns x - k*pi/2 as a double-double with an absolute error below
# 2^-130 in that cancelling case (and a relative error near 2^-100 otherwise),
# so vsin/vcos are accurate for every double up to the limit.
TRIG_LIMIT = 1.5 * 2.0**20          # 1572864.0, just under 2^20 * pi/2
