# Request latency over time across restarts (tests/bench/plot.py writes the data and
# runs this): one block per phase in DATA ("seconds slowest_ms failed"), the restart
# requests in EVENTS ("seconds"), the phases' names in L1, L2, ... (up to 6: restarts.py's
# http_worker phases, then app_peers.py's Node.js app under fdsupd, pm2, Server::Starter).
set terminal pngcairo size 1600,560 font "sans,11" background "white"
set output OUT
set termoption noenhanced
set title "Slowest request in each 10 ms while the worker restarts (load_client -c 4)"
set xlabel "seconds (phases run one after another)"
set ylabel "latency, ms (log)"
set logscale y
set yrange [0.05:FAILED_AT * 3]
set grid ytics
set key outside bottom center horizontal
set style line 1 lc rgb "#1b9e77" lw 1.2
set style line 2 lc rgb "#7570b3" lw 1.2
set style line 3 lc rgb "#d95f02" lw 1.2
set style line 4 lc rgb "#e7298a" lw 1.2
set style line 5 lc rgb "#66a61e" lw 1.2
set style line 6 lc rgb "#a6761d" lw 1.2
set label 1 "failed requests" at graph 0.005, first FAILED_AT * 1.35 left font "sans,10"
label(i) = value(sprintf("L%d", i))
plot for [i=1:PHASES] DATA index (i - 1) using 1:($3 > 0 ? NaN : $2) with lines ls i title label(i), \
     for [i=1:PHASES] DATA index (i - 1) using 1:($3 > 0 ? FAILED_AT : NaN) with points ls i pt 7 ps 0.5 notitle, \
     EVENTS using 1:(FAILED_AT * 2) with points pt 11 ps 1.2 lc rgb "black" title "restart requested"
