"""Numbers of the native kernels that the code generator needs, in a module
of their own: the generator needs the numbers, not the kernels (importing
them imports Numba).  The range of the vectorised sin/cos kernels
(:mod:`jitgrad.backend.vecmath`) and the trip counts that
:mod:`jitgrad.backend.tripcount` hides from LLVM."""

# For |x| <= TRIG_LIMIT the quadrant k = round(x*2/pi) is below 1.0014e6 < 2^20,
# which keeps k*PIO2_{1,2,3} exact.  By the continued-fraction expansion of
# pi/2 (best approximations k*pi/2 ~ m*2^-j), no double of that range lies
# closer than 2^-60.4 to a nonzero multiple of pi/2, and the reduction in
# vecmath returns x - k*pi/2 as a double-double with an absolute error below
# 2^-130 in that cancelling case (and a relative error near 2^-100 otherwise),
# so vsin/vcos are accurate for every double up to the limit.
TRIG_LIMIT = 1.5 * 2.0**20          # 1572864.0, just under 2^20 * pi/2

# Below this, a loop over a literal extent is written with tripcount.n(extent):
# LLVM's TinyTripCountVectorThreshold (see tripcount).
TINY_TRIP = 16
