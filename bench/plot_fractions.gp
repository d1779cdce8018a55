# Plots the fraction of copy bandwidth per configuration from the
# fractions.dat that dcnv4-bench writes beside results.csv.
# gnuplot -e "data='fractions.dat'; png='fractions.png'; title='...'" plot_fractions.gp
if (!exists("data")) data = 'fractions.dat'
if (!exists("png")) png = 'fractions.png'
if (!exists("title")) title = 'dcnv4'
set terminal pngcairo size 1600,700 font ",10" noenhanced
set output png
set datafile missing '-'
set key autotitle columnhead outside top center horizontal
set title title
set ylabel 'fraction of copy bandwidth (min bytes / time / copy GB/s)'
set yrange [0:*]
set grid ytics
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xtics rotate by -50 scale 0
plot data using 2:xticlabels(1) lc rgb '#1f77b4', \
     ''   using 3 lc rgb '#ff7f0e', \
     ''   using 4 lc rgb '#2ca02c', \
     ''   using 5 lc rgb '#d62728'
