# mizzen in an image: the static binary from scripts/build and nothing
# else, so it builds with no registry access.
#
#   scripts/build amd64 && docker build -t mizzen .
#   docker build --build-arg ARCH=arm64 -t mizzen:arm64 .
#
# A server (control plane) in Docker:
#   docker run -d --name mizzen --privileged --network host \
#     -v /var/lib/mizzen:/var/lib/mizzen -v /etc/mizzen:/etc/mizzen \
#     mizzen server --disable-agent
# Its agent drives the host's Docker, so it needs the socket, the host's
# PID namespace and the data dir at the same path as on the host:
#   docker run -d --name mizzen --privileged --network host --pid host \
#     -v /var/run/docker.sock:/var/run/docker.sock \
#     -v /var/lib/mizzen:/var/lib/mizzen -v /etc/mizzen:/etc/mizzen \
#     mizzen server
# The image holds no iptables or modprobe: load br_netfilter on the host
# first, and where Docker's FORWARD policy is DROP let the cluster CIDR
# through DOCKER-USER yourself (the agent adds those rules only where it
# finds iptables), or run the agent on the host (install.sh).
FROM scratch
ARG ARCH=amd64
COPY dist/mizzen-${ARCH} /bin/mizzen
VOLUME /var/lib/mizzen
EXPOSE 6443
ENTRYPOINT ["/bin/mizzen"]
CMD ["server"]
